package validate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Config is what the cluster's layout says about addresses. The webhook gets
// it from flags; a node router also reads what its node really has.
type Config struct {
	// VPC CIDRs: every gateway must lie in one of them.
	VPC []netip.Prefix
	// Pod and Service CIDRs, never routed via a gateway.
	Pod     []netip.Prefix
	Service []netip.Prefix
	// APIServers are the API server's addresses, never routed via a gateway.
	APIServers []netip.Addr
}

// ParsePrefixes parses a comma-separated list of canonical IPv4 CIDRs, as
// given to a flag; flag names the flag in errors.
func ParsePrefixes(flag, list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range splitList(list) {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--%s: %q is not a CIDR such as 198.51.100.0/24", flag, s))
		case !p.Addr().Is4():
			errs = append(errs, fmt.Errorf("--%s: %q is IPv6; only IPv4 is supported", flag, s))
		case p.Masked() != p:
			errs = append(errs, fmt.Errorf("--%s: %q has host bits set; did you mean %s?", flag, s, p.Masked()))
		default:
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

// ParseAddrs parses a comma-separated list of IPv4 addresses.
func ParseAddrs(flag, list string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, s := range splitList(list) {
		a, err := ParseIPv4(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %q %w", flag, s, err))
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

func splitList(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Range is one range of the cluster's own, with the words that name
// it in messages.
type Range struct {
	Prefix netip.Prefix
	What   string
}

// Ranges are the cluster's own ranges: never a destination (the webhook)
// and never steered (every node, which adds its own connected routes,
// --never-route and the special ranges). One function for both.
func (c Config) Ranges() []Range {
	var out []Range
	for _, p := range c.VPC {
		out = append(out, Range{p, "the VPC CIDR " + p.String()})
	}
	for _, p := range c.Pod {
		out = append(out, Range{p, "the pod CIDR " + p.String()})
	}
	for _, p := range c.Service {
		out = append(out, Range{p, "the service CIDR " + p.String()})
	}
	for _, a := range c.APIServers {
		// An address in a special range (the loopback a kubeconfig may
		// name) is no destination anyway: naming it again in a warning
		// says nothing.
		if slices.ContainsFunc(SpecialRanges(), func(p netip.Prefix) bool { return p.Contains(a) }) {
			continue
		}
		out = append(out, Range{netip.PrefixFrom(a, 32), "the API server address " + a.String()})
	}
	return out
}

// ParseConfig reads the cluster's layout from the flags the webhook and
// the router share (--vpc-cidr, --pod-cidr, --service-cidr,
// --api-server-address, each comma-separated), naming the flag of every
// mistake at once.
func ParseConfig(vpc, pod, service, apiServers string) (Config, error) {
	var c Config
	var errs []error
	var err error
	if c.VPC, err = ParsePrefixes("vpc-cidr", vpc); err != nil {
		errs = append(errs, err)
	} else if len(c.VPC) == 0 {
		errs = append(errs, errors.New("--vpc-cidr is required: give the CIDR(s) of the VPC the nodes and gateways share"))
	}
	if c.Pod, err = ParsePrefixes("pod-cidr", pod); err != nil {
		errs = append(errs, err)
	}
	if c.Service, err = ParsePrefixes("service-cidr", service); err != nil {
		errs = append(errs, err)
	}
	if c.APIServers, err = ParseAddrs("api-server-address", apiServers); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}
