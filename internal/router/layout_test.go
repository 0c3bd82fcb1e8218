package router

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// The router's layout: what is set wins; the rest comes from the node's
// address, the Nodes and the ServiceCIDRs, as the informers hold them.
func TestRouterLayoutDiscovers(t *testing.T) {
	nodes, services := cache.NewStore(cache.MetaNamespaceKeyFunc), cache.NewStore(cache.MetaNamespaceKeyFunc)
	for i, pods := range []string{"198.18.64.0/24", "198.18.65.0/24"} {
		if err := nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: string(rune('a' + i))}, Spec: corev1.NodeSpec{PodCIDRs: []string{pods}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := services.Add(&networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"198.18.255.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	facts := policy.Node{VPCLink: "vpc0", VPCAddr: netip.MustParseAddr("198.51.100.10"), VPCPrefix: netip.MustParsePrefix("198.51.100.0/24")}
	p := netip.MustParsePrefix

	discover := func(nodes, services cache.Store) *kube.Cached[validate.Discovered] {
		return kube.NewCached(func() validate.Discovered { return kube.Discover(nodes, services) })
	}
	r := &Reconciler{Cache: Cache{Ranges: discover(nodes, services)}}
	c, err := r.Layout(facts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.VPC, []netip.Prefix{p("198.51.100.0/24")}) || !slices.Equal(c.Pod, []netip.Prefix{p("198.18.64.0/23")}) || !slices.Equal(c.Service, []netip.Prefix{p("198.18.255.0/24")}) {
		t.Errorf("discovered %+v", c)
	}

	// Set in the layout: not watched (nil stores), not discovered.
	set := validate.Config{VPC: []netip.Prefix{p("198.51.0.0/16")}, Pod: []netip.Prefix{p("10.244.0.0/16")}, Service: []netip.Prefix{p("10.245.0.0/16")}}
	r = &Reconciler{Config: Config{Cluster: set}}
	if c, err := r.Layout(facts); err != nil || !slices.Equal(c.VPC, set.VPC) || !slices.Equal(c.Pod, set.Pod) {
		t.Errorf("set: %+v, %v", c, err)
	}
	if h := r.VPCHint(); !slices.Equal(h.CIDRs, set.VPC) {
		t.Errorf("a set VPC finds the link: %+v", h)
	}

	// Neither: the error names the setting.
	r = &Reconciler{Cache: Cache{Ranges: discover(cache.NewStore(cache.MetaNamespaceKeyFunc), services)}}
	if _, err := r.Layout(facts); err == nil || !strings.Contains(err.Error(), "set podCIDRs in layout.yaml") {
		t.Errorf("no pod range anywhere: %v", err)
	}
}
