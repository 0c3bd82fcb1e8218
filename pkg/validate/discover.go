package validate

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"
)

// Discovered is what the cluster itself says of its layout, for the
// settings the layout file leaves out.
type Discovered struct {
	// VPC: on a node router, the prefix of the address its node is known
	// by (the link that holds the node's InternalIP); on the webhook, what
	// every node router reports in common (CommonVPC).
	VPC []netip.Prefix
	// NoVPC says why VPC is empty: what was tried.
	NoVPC string
	// Pod: every Node's spec.podCIDRs.
	Pod []netip.Prefix
	// Service: the ServiceCIDR objects' CIDRs (networking.k8s.io/v1).
	Service []netip.Prefix
}

// Resolve is the cluster's layout as both binaries use it: each setting
// of set (LoadConfig's: the layout file, flags over it) that is given
// wins; each left out is what the cluster says (d). A setting that is
// neither given nor discovered is an error naming it and how to set it,
// every one at once.
func Resolve(set Config, d Discovered) (Config, error) {
	c, err := resolveRanges(set, d)
	if len(c.VPC) == 0 {
		c.VPC = d.VPC
		if len(c.VPC) == 0 {
			err = errors.Join(unresolved("vpcCIDRs", "vpc-cidr", cmp.Or(d.NoVPC, "no address of the node's was found")), err)
		}
	}
	return c, err
}

// CheckRanges is Resolve's error for the pod and Service ranges alone:
// what the webhook needs at start, its VPC coming later from the routers.
func CheckRanges(set Config, d Discovered) error {
	_, err := resolveRanges(set, d)
	return err
}

// resolveRanges resolves the pod and Service ranges; the VPC is as set.
func resolveRanges(set Config, d Discovered) (Config, error) {
	c := set
	var errs []error
	if len(c.Pod) == 0 {
		if c.Pod = Aggregate(d.Pod); len(c.Pod) == 0 {
			errs = append(errs, unresolved("podCIDRs", "pod-cidr", "no Node has spec.podCIDRs (the controller-manager's --allocate-node-cidrs, or your CNI's IPAM, fills them)"))
		}
	}
	if len(c.Service) == 0 {
		if c.Service = Aggregate(d.Service); len(c.Service) == 0 {
			errs = append(errs, unresolved("serviceCIDRs", "service-cidr", "the API server holds no ServiceCIDR (networking.k8s.io/v1; it makes one from its --service-cluster-ip-range)"))
		}
	}
	return c, errors.Join(errs...)
}

func unresolved(field, flag, why string) error {
	return fmt.Errorf("%s is not set and could not be discovered: %s; set %s in layout.yaml of the ConfigMap %s (or --%s)", field, why, field, LayoutConfigMap, flag)
}

// Aggregate is the IPv4 addresses of ps as the fewest prefixes, sorted: a
// thousand nodes' /24s inside one /16 are that /16, one carve-out.
func Aggregate(ps []netip.Prefix) []netip.Prefix {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		if p.IsValid() && p.Addr().Is4() {
			b.AddPrefix(p.Masked())
		}
	}
	s, err := b.IPSet()
	if err != nil {
		return nil // only invalid prefixes make an error, and none is added
	}
	return s.Prefixes()
}

// CommonVPC is the VPC as the webhook takes it when the layout sets none:
// the addresses every reporting node has in its VPC (node name → the
// prefixes its router reports). A gateway must be on-link for every node
// it may serve, so the common part is the strict choice, and a node that
// reports wrongly (or lies: a router may write its own node's state only)
// can narrow what is admitted, never widen it. It is empty, with why, when
// no node reports or the reports share nothing.
func CommonVPC(reports map[string][]netip.Prefix) ([]netip.Prefix, string) {
	if len(reports) == 0 {
		return nil, "no node router has reported its VPC yet (StaticRouteNodeState status.clusterRanges.vpc)"
	}
	var common *netipx.IPSet
	for _, ps := range reports {
		var b netipx.IPSetBuilder
		for _, p := range ps {
			if p.IsValid() && p.Addr().Is4() {
				b.AddPrefix(p.Masked())
			}
		}
		if common != nil {
			b.Intersect(common)
		}
		s, err := b.IPSet()
		if err != nil {
			return nil, err.Error()
		}
		common = s
	}
	if ps := common.Prefixes(); len(ps) > 0 {
		return ps, ""
	}
	names := make([]string, 0, len(reports))
	for n := range reports {
		names = append(names, n)
	}
	slices.Sort(names)
	var views []string
	for _, n := range names {
		views = append(views, fmt.Sprintf("%s: %v", n, reports[n]))
	}
	return nil, "the nodes report VPCs with no address in common (" + strings.Join(views, "; ") + ")"
}
