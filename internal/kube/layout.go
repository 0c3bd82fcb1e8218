package kube

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/validate"
)

// The cluster's layout where the cluster itself knows it, for the
// settings the layout file leaves out (validate.Resolve): informers that
// keep only what is read, and the readers of their stores.

// WatchServiceCIDRs is an informer on the ServiceCIDR objects, each kept
// as its CIDRs: the API server makes the first from its
// --service-cluster-ip-range, and an admin may add more.
func WatchServiceCIDRs(c *Client, conn *Connection, h cache.ResourceEventHandler) (*Informer, error) {
	return NewInformer(Watch{
		Client: c.Network, Resource: "servicecidrs", Example: &networkingv1.ServiceCIDR{}, Conn: conn,
		Transform: Strip(func(s *networkingv1.ServiceCIDR) {
			s.Annotations, s.Labels, s.Status = nil, nil, networkingv1.ServiceCIDRStatus{}
		}),
	}, h)
}

// WatchPodCIDRs is an informer on every Node, each kept as its name and
// spec.podCIDRs: a Node's status lists its images, and a thousand nodes'
// would be most of the heap.
func WatchPodCIDRs(c *Client, conn *Connection, h cache.ResourceEventHandler) (*Informer, error) {
	return NewInformer(Watch{
		Client: c.Core, Resource: "nodes", Example: &corev1.Node{}, Conn: conn,
		Transform: Strip(func(n *corev1.Node) {
			n.Annotations, n.Labels, n.OwnerReferences = nil, nil, nil
			n.Spec = corev1.NodeSpec{PodCIDRs: n.Spec.PodCIDRs}
			n.Status = corev1.NodeStatus{}
		}),
	}, h)
}

// WatchReportedVPCs is an informer on the StaticRouteNodeStates, each
// kept as the VPC its router reports.
func WatchReportedVPCs(c *Client, conn *Connection, h cache.ResourceEventHandler) (*Informer, error) {
	return NewInformer(Watch{
		Client: c.Routes, Resource: "staticroutenodestates", Example: &v1.StaticRouteNodeState{}, Conn: conn,
		Transform: Strip(func(s *v1.StaticRouteNodeState) {
			s.Annotations, s.Labels = nil, nil
			s.Status = v1.StaticRouteNodeStateStatus{ClusterRanges: v1.NodeClusterRanges{VPC: s.Status.ClusterRanges.VPC}}
		}),
	}, h)
}

// Discover is what the stores say of the pod ranges (nodes: every Node's
// podCIDRs) and the Service ranges (services: the ServiceCIDRs), each
// aggregated; a nil store is a range the layout sets, not watched.
func Discover(nodes, services cache.Store) validate.Discovered {
	var d validate.Discovered
	if nodes != nil {
		d.Pod = validate.Aggregate(PodCIDRs(nodes))
	}
	if services != nil {
		d.Service = validate.Aggregate(ServiceCIDRs(services))
	}
	return d
}

// ServiceCIDRs are the CIDRs of the ServiceCIDRs in s (one being deleted
// still holds Services until it is gone).
func ServiceCIDRs(s cache.Store) []netip.Prefix {
	var out []netip.Prefix
	for _, o := range s.List() {
		if sc, ok := o.(*networkingv1.ServiceCIDR); ok {
			out = append(out, parsed(sc.Spec.CIDRs)...)
		}
	}
	return out
}

// PodCIDRs are the spec.podCIDRs of every Node in s.
func PodCIDRs(s cache.Store) []netip.Prefix {
	var out []netip.Prefix
	for _, o := range s.List() {
		if n, ok := o.(*corev1.Node); ok {
			out = append(out, parsed(n.Spec.PodCIDRs)...)
		}
	}
	return out
}

// ReportedVPCs are the VPCs the node routers report (node name →
// prefixes), for the nodes that still exist in nodes: a node state
// outlives its deleted Node until the garbage collector follows its owner
// reference. A router that
// reports none (one older than the field) is left out, not counted as a
// node without a VPC.
func ReportedVPCs(states, nodes cache.Store) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for _, o := range states.List() {
		s, ok := o.(*v1.StaticRouteNodeState)
		if !ok || len(s.Status.ClusterRanges.VPC) == 0 {
			continue
		}
		if _, exists, err := nodes.GetByKey(s.Name); err != nil || !exists {
			continue
		}
		if ps := parsed(s.Status.ClusterRanges.VPC); len(ps) > 0 {
			out[s.Name] = ps
		}
	}
	return out
}

// parsed are the valid CIDRs of ss; the API server validated them, and
// what it did not (a node state's) is skipped, never guessed at.
func parsed(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
