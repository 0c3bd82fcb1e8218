package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
	"github.com/staticroute/staticroute/pkg/validate"
)

func TestNodeStatus(t *testing.T) {
	gw := netip.MustParseAddr("198.51.100.4")
	d := policy.Desired{
		Groups: []policy.Group{{Name: "primary", Active: "primary", Gateway: gw, State: v1.NodeGroupApplied, Prefixes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}},
		Routes: []policy.Route{
			{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Kind: policy.Via, Gateway: gw, Group: "primary"},
			{Prefix: netip.MustParsePrefix("198.18.64.0/18"), Kind: policy.Throw},
		},
	}
	vpc := netip.MustParsePrefix("198.51.100.0/24")
	facts := policy.Node{VPCLink: "vpc0", OnLink: []netip.Prefix{vpc}, Connected: []netip.Prefix{vpc}}
	cluster := validate.Config{VPC: []netip.Prefix{vpc}}
	tests := map[string]struct {
		facts    policy.Node
		cluster  validate.Config
		applyErr error
		check    func(t *testing.T, s v1.StaticRouteNodeStateStatus)
	}{
		"an applied group is reported with its gateway and prefixes": {
			facts: facts, cluster: cluster,
			check: func(t *testing.T, s v1.StaticRouteNodeStateStatus) {
				g := s.Groups[0]
				if s.AppliedCount != 1 || g.State != v1.NodeGroupApplied || g.Gateway != "198.51.100.4" || g.Prefixes[0] != "0.0.0.0/0" {
					t.Errorf("%+v", s)
				}
				if !meta.IsStatusConditionTrue(s.Conditions, "Ready") || !meta.IsStatusConditionFalse(s.Conditions, "ExternalAgentConflict") {
					t.Errorf("conditions %+v", s.Conditions)
				}
			},
		},
		"a failed apply marks every group and Ready false": {
			facts: facts, cluster: cluster, applyErr: errors.New("netlink: boom"),
			check: func(t *testing.T, s v1.StaticRouteNodeStateStatus) {
				if s.Groups[0].State != v1.NodeGroupError || !meta.IsStatusConditionFalse(s.Conditions, "Ready") {
					t.Errorf("%+v", s)
				}
			},
		},
		"the old operator's leftover main-table route is reported": {
			facts: func() policy.Node {
				f := facts
				f.MainVia = []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}
				return f
			}(),
			cluster: cluster,
			check: func(t *testing.T, s v1.StaticRouteNodeStateStatus) {
				c := meta.FindStatusCondition(s.Conditions, "ExternalAgentConflict")
				if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "192.0.2.7/32") {
					t.Errorf("%+v", c)
				}
			},
		},
		"a CNI's main-table route inside a carve-out is not a conflict": {
			facts: func() policy.Node {
				f := facts
				f.MainVia = []netip.Prefix{netip.MustParsePrefix("198.18.65.0/24")}
				return f
			}(),
			cluster: cluster,
			check: func(t *testing.T, s v1.StaticRouteNodeStateStatus) {
				if !meta.IsStatusConditionFalse(s.Conditions, "ExternalAgentConflict") {
					t.Errorf("%+v", s.Conditions)
				}
			},
		},
		"a VPC CIDR flag that the VPC link is not connected to is a mismatch": {
			facts:   facts,
			cluster: validate.Config{VPC: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
			check: func(t *testing.T, s v1.StaticRouteNodeStateStatus) {
				if len(s.ClusterRanges.Mismatches) != 1 || !strings.Contains(s.ClusterRanges.Mismatches[0], "the VPC 203.0.113.0/24 (vpcCIDRs) is not connected on vpc0") {
					t.Errorf("%+v", s.ClusterRanges)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.check(t, nodeStatus(d, tc.facts, tc.cluster, nil, 52300, nil, tc.applyErr))
		})
	}
}

// recorder keeps the reasons of the Events it is given.
type recorder struct{ reasons []string }

func (r *recorder) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	r.reasons = append(r.reasons, reason)
}

// A node records Events only for failures and conflicts, once per
// transition, at most maxEvents and one more per report.
func TestEventsOnlyOnFailuresTransitionsAndBounded(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	status := func(n int, state string) v1.StaticRouteNodeStateStatus {
		var s v1.StaticRouteNodeStateStatus
		for i := range n {
			s.Groups = append(s.Groups, v1.NodeGroupState{Group: fmt.Sprintf("g%02d", i), ActiveMember: fmt.Sprintf("g%02d", i), Gateway: "198.51.100.4", State: state})
		}
		return s
	}
	var routes []*v1.StaticRoute // sorted by name, as the reconciler passes them
	for i := range 25 {
		routes = append(routes, &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("g%02d", i)}})
	}
	rec := &recorder{}
	p := &Reporter{Events: rec}
	for _, step := range []struct {
		name  string
		s     v1.StaticRouteNodeStateStatus
		wants []string
	}{
		{"two groups applied: no Event (the node state says it, the summarizer sums it up)", status(2, v1.NodeGroupApplied), nil},
		{"nothing changed: no Event", status(2, v1.NodeGroupApplied), nil},
		{"23 more groups fail at once: ten Events and one for the rest", status(25, v1.NodeGroupGatewayNotOnLink),
			append(slices.Repeat([]string{v1.NodeGroupGatewayNotOnLink}, maxEvents), "ManyGroupsChanged")},
		{"all applied again: no Event", status(25, v1.NodeGroupApplied), nil},
		{"one group fails: one Event", func() v1.StaticRouteNodeStateStatus {
			s := status(25, v1.NodeGroupApplied)
			s.Groups[7].State = v1.NodeGroupGatewayNotOnLink
			return s
		}(), []string{v1.NodeGroupGatewayNotOnLink}},
		{"the same failure again: no Event", func() v1.StaticRouteNodeStateStatus {
			s := status(25, v1.NodeGroupApplied)
			s.Groups[7].State = v1.NodeGroupGatewayNotOnLink
			return s
		}(), nil},
	} {
		rec.reasons = nil
		p.recordTransitions(node, routes, step.s)
		p.last = &step.s
		if !slices.Equal(rec.reasons, step.wants) {
			t.Errorf("%s: Events %v, want %v", step.name, rec.reasons, step.wants)
		}
	}
}

// A node whose view disagrees with the layout says so in its node state
// and, once per change of what disagrees, in a Warning Event.
func TestLayoutMismatchIsReportedOnce(t *testing.T) {
	cluster := validate.Config{Pod: []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18")}}
	inside := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"198.18.65.0/24", "2001:db8::/64"}}}
	outside := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"198.19.0.0/24"}}}
	wider := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"198.18.0.0/16"}}}
	if m := podMismatches(cluster, inside); len(m) != 0 {
		t.Errorf("a pod CIDR inside podCIDRs: %v", m)
	}
	if m := podMismatches(cluster, wider); len(m) != 1 {
		t.Errorf("a pod CIDR wider than podCIDRs: %v", m)
	}
	m := podMismatches(cluster, outside)
	if len(m) != 1 || !strings.Contains(m[0], "the node's pod CIDR 198.19.0.0/24 (spec.podCIDRs) is outside the pod ranges [198.18.64.0/18] (podCIDRs)") {
		t.Fatalf("a pod CIDR outside podCIDRs: %v", m)
	}
	rec := &recorder{}
	p := &Reporter{Events: rec}
	for i, want := range []int{1, 0} {
		s := v1.StaticRouteNodeStateStatus{ClusterRanges: v1.NodeClusterRanges{Mismatches: m}}
		rec.reasons = nil
		p.recordTransitions(outside, nil, s)
		p.last = &s
		if len(rec.reasons) != want || (want == 1 && rec.reasons[0] != "LayoutMismatch") {
			t.Errorf("report %d: Events %v, want %d LayoutMismatch", i+1, rec.reasons, want)
		}
	}
}

// A node state says why a gateway is Pending or Damped, and until when it
// is damped.
func TestGatewayHealthSaysWhy(t *testing.T) {
	gw := netip.MustParseAddr("198.51.100.12")
	path := group.Path{Gateway: gw, Target: gw, Protocol: v1.ProbeICMP}
	probe := group.Probe{Path: path}
	until := time.Date(2026, 12, 7, 8, 0, 7, 0, time.UTC)
	since := until.Add(-7 * time.Second)
	for name, tc := range map[string]struct {
		m      policy.Member
		h      map[group.Path]group.Health
		health string
		msg    string
		damped bool
	}{
		"pending, new":                {policy.Member{State: group.Pending}, nil, v1.GatewayPending, "takes no traffic over until one is", false},
		"pending, carrying":           {policy.Member{State: group.Pending, Carrying: true}, nil, v1.GatewayPending, "keeps the traffic it carries", false},
		"damped":                      {policy.Member{State: group.Damped}, map[group.Path]group.Health{path: {Answered: true, Flaps: 4, Since: since, DampedUntil: until}}, v1.GatewayDamped, "changed 4 times", true},
		"down and damped":             {policy.Member{State: group.Down}, map[group.Path]group.Health{path: {Down: true, Answered: true, Flaps: 3, Since: since, DampedUntil: until}}, v1.GatewayDown, "", true},
		"down, not damped":            {policy.Member{State: group.Down}, map[group.Path]group.Health{path: {Down: true, Answered: true, Flaps: 1, Since: since}}, v1.GatewayDown, "", false},
		"down, not on-link: no probe": {policy.Member{State: group.Down}, nil, v1.GatewayDown, "not on-link", false},
	} {
		tc.m.Name, tc.m.Checked = "b", true
		tc.m.Gateways = []policy.MemberGateway{{Gateway: gw, Probe: probe, State: tc.m.State}}
		got := gatewayHealth([]policy.Member{tc.m}, tc.h)
		if len(got) != 1 {
			t.Fatalf("%s: %+v", name, got)
		}
		g := got[0]
		if g.Health != tc.health || !strings.Contains(g.Message, tc.msg) || tc.msg == "" && g.Message != "" || (g.DampedUntil != nil) != tc.damped {
			t.Errorf("%s: %s %q until %v, want %s %q damped %t", name, g.Health, g.Message, g.DampedUntil, tc.health, tc.msg, tc.damped)
		}
		if tc.damped && !g.DampedUntil.Time.Equal(until) {
			t.Errorf("%s: damped until %v, want %v", name, g.DampedUntil, until)
		}
	}
}

// captured keeps the last node state written.
type captured struct{ last *v1.StaticRouteNodeState }

func (c *captured) ApplyNodeState(_ context.Context, obj *v1.StaticRouteNodeState, _ string) error {
	c.last = obj
	return nil
}

// A node state carries the steering rule and table, and every carve-out
// with its reason: what kubectl staticroute why reads.
func TestReportCarriesSteeringAndCarveOuts(t *testing.T) {
	in := policytest.Input(policytest.Route("egress", "", "198.51.100.4", 0, "192.0.2.0/24"))
	d := policy.Compute(in)
	w := &captured{}
	p := &Reporter{Writer: w, Events: &recorder{}}
	o := Outcome{Node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, Desired: d, Facts: in.Node, Cluster: in.Cluster,
		Steering: &v1.NodeSteering{RulePriority: 30010, Table: 52102}}
	if err := p.Report(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	s := w.last.Status
	if s.Steering == nil || *s.Steering != (v1.NodeSteering{RulePriority: 30010, Table: 52102}) {
		t.Errorf("steering: %+v", s.Steering)
	}
	want := map[string]string{"198.51.100.0/24": "the VPC CIDR 198.51.100.0/24", "198.18.64.0/18": "the pod CIDR 198.18.64.0/18",
		"203.0.113.5/32": "the API server address 203.0.113.5", "203.0.113.0/26": "the connected route 203.0.113.0/26"}
	got := map[string]string{}
	for _, c := range s.CarveOuts {
		got[c.Prefix] = c.Reason
	}
	for p, why := range want {
		if got[p] != why {
			t.Errorf("carve-out %s: %q, want %q (all: %v)", p, got[p], why, s.CarveOuts)
		}
	}
}

// A group over several gateways reports its lanes: which take new
// connections, where a dead one's connections went, marks and tables.
func TestNodeStatusReportsLanes(t *testing.T) {
	sr := policytest.WithCheck(policytest.Gateways("multi", "", []string{"198.51.100.4", "198.51.100.12"}, 0, "192.0.2.0/24"), "")
	in := policytest.Input(sr)
	ps, _ := group.ProbesOf(sr)
	in.Health = map[group.Path]group.State{ps[0].Path: group.Up, ps[1].Path: group.Down}
	d := policy.Compute(in)
	s := nodeStatus(d, in.Node, in.Cluster, nil, 52300, nil, nil)
	lanes := s.Groups[0].Lanes
	if len(lanes) != 2 || !lanes[0].Open || lanes[0].To != "" || lanes[1].Open || lanes[1].To != "198.51.100.4" ||
		lanes[0].Table != 52300+lanes[0].Mark || lanes[0].Mark != int32(d.Lanes[slices.IndexFunc(d.Lanes, func(l policy.GroupLane) bool { return l.Gateway == ps[0].Gateway })].Slot) {
		t.Errorf("lanes %+v", lanes)
	}
	if gws := s.Groups[0].Gateways; len(gws) != 2 || gws[0].Health != v1.GatewayUp || gws[1].Health != v1.GatewayDown {
		t.Errorf("gateways' health %+v, want one entry per gateway", gws)
	}
}
