package webhook

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/validate"
)

// discovery is a Discovery over in-memory stores, as the informers fill
// them, with the handler wired as in the webhook.
func discovery(t *testing.T, set validate.Config) (*Discovery, func(s toolscache.Store, obj any)) {
	t.Helper()
	d := NewDiscovery(set)
	d.ServiceCIDRs, d.Nodes, d.NodeStates = toolscache.NewStore(toolscache.MetaNamespaceKeyFunc), toolscache.NewStore(toolscache.MetaNamespaceKeyFunc), toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	h := d.Feed()
	return d, func(s toolscache.Store, obj any) {
		if err := s.Add(obj); err != nil {
			t.Fatal(err)
		}
		h.OnAdd(obj, false)
	}
}

func node(name string, pods ...string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: pods}}
}

func nodeState(name string, vpc ...string) *v1.StaticRouteNodeState {
	return &v1.StaticRouteNodeState{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.StaticRouteNodeStateStatus{ClusterRanges: v1.NodeClusterRanges{VPC: vpc}}}
}

func TestDiscoveryTakesWhatTheClusterSays(t *testing.T) {
	d, add := discovery(t, validate.Config{})
	add(d.ServiceCIDRs, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"198.18.255.0/24", "2001:db8::/112"}}})
	add(d.Nodes, node("a", "198.18.64.0/24"))
	add(d.Nodes, node("b", "198.18.65.0/24"))
	if _, err := d.Config(); err == nil || !strings.Contains(err.Error(), "vpcCIDRs is not set and could not be discovered: no node router has reported its VPC yet") {
		t.Fatalf("before any router reported: %v", err)
	}
	add(d.NodeStates, nodeState("a", "198.51.100.0/24"))
	add(d.NodeStates, nodeState("b", "198.51.0.0/16"))
	// A deleted node's state (its owner gone, the collector not yet
	// through) does not count.
	add(d.NodeStates, nodeState("gone", "203.0.113.0/24"))
	c, err := d.Config()
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	if !slices.Equal(c.VPC, []netip.Prefix{p("198.51.100.0/24")}) || !slices.Equal(c.Pod, []netip.Prefix{p("198.18.64.0/23")}) || !slices.Equal(c.Service, []netip.Prefix{p("198.18.255.0/24")}) {
		t.Errorf("resolved %+v", c)
	}
}

func TestDiscoveryKeepsWhatIsSet(t *testing.T) {
	set := validate.Config{VPC: []netip.Prefix{netip.MustParsePrefix("10.116.0.0/20")}, Pod: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, Service: []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16")}}
	d := NewDiscovery(set) // nothing watched
	c, err := d.Config()
	if err != nil || !slices.Equal(c.VPC, set.VPC) || !slices.Equal(c.Pod, set.Pod) || !slices.Equal(c.Service, set.Service) {
		t.Errorf("%+v, %v; want the set layout", c, err)
	}
}

// A route cannot be judged while the VPC is unknown: it is refused as
// unavailable, saying what to do, never admitted unchecked.
func TestValidatorRefusesWhileTheVPCIsUnknown(t *testing.T) {
	d, add := discovery(t, validate.Config{})
	add(d.ServiceCIDRs, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"198.18.255.0/24"}}})
	add(d.Nodes, node("a", "198.18.64.0/24"))
	if err := d.CheckRanges(); err != nil {
		t.Errorf("at start, with the pod and Service ranges known and the VPC not yet: %v", err)
	}
	v := &Validator{Layout: d, Store: NewStore(0)}
	_, err := v.ValidateCreate(context.Background(), sr("a", "", "198.51.100.4", "203.0.113.0/24"))
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "set vpcCIDRs in layout.yaml of the ConfigMap staticroute-layout") {
		t.Fatalf("want unavailable, naming vpcCIDRs: %v", err)
	}
	add(d.NodeStates, nodeState("a", "198.51.100.0/24"))
	if _, err := v.ValidateCreate(context.Background(), sr("a", "", "198.51.100.4", "203.0.113.0/24")); err != nil {
		t.Fatalf("once node a reported its VPC: %v", err)
	}
	_, err = v.ValidateCreate(context.Background(), sr("b", "", "198.51.100.5", "198.18.64.0/26"))
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "pod CIDR 198.18.64.0/24") {
		t.Errorf("a destination in a node's discovered pod CIDR: %v", err)
	}
}
