package summary

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func route(name, group string, age time.Duration) v1.StaticRoute {
	return v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))},
		Spec:       v1.StaticRouteSpec{Group: group, Gateway: "198.51.100.4", Destinations: []string{"192.0.2.7"}},
	}
}

func node(name string, groups ...v1.NodeGroupState) v1.StaticRouteNodeState {
	return v1.StaticRouteNodeState{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.StaticRouteNodeStateStatus{Groups: groups}}
}

func TestStatus(t *testing.T) {
	primary, secondary := route("primary", "", 0), route("secondary", "primary", time.Minute)
	applied := func(member string) v1.NodeGroupState {
		return v1.NodeGroupState{Group: "primary", ActiveMember: member, State: v1.NodeGroupApplied}
	}
	tests := map[string]struct {
		sr     v1.StaticRoute
		routes []v1.StaticRoute
		states []v1.StaticRouteNodeState
		want   v1.StaticRouteStatus // only the fields compared below
	}{
		"a lone route applied on every node is Active 2/2": {
			sr: primary, routes: []v1.StaticRoute{primary},
			states: []v1.StaticRouteNodeState{node("a", applied("primary")), node("b", applied("primary")), node("c")},
			want:   v1.StaticRouteStatus{Group: "primary", State: v1.StateActive, Nodes: "2/2", NodesSelected: 2, NodesApplied: 2},
		},
		"after failover the older member is Standby": {
			sr: primary, routes: []v1.StaticRoute{primary, secondary},
			states: []v1.StaticRouteNodeState{node("a", applied("secondary"))},
			want:   v1.StaticRouteStatus{Group: "primary", State: v1.StateStandby, Nodes: "-"},
		},
		"the new member counts nodes that have not switched yet as failing": {
			sr: secondary, routes: []v1.StaticRoute{primary, secondary},
			states: []v1.StaticRouteNodeState{node("a", applied("secondary")), node("b", applied("primary"))},
			want:   v1.StaticRouteStatus{Group: "primary", State: v1.StateActive, Nodes: "1/2", NodesSelected: 2, NodesApplied: 1, NodesFailed: 1, FailingNodes: []string{"b"}},
		},
		"a member being deleted leaves its predecessor active": {
			sr: primary,
			routes: []v1.StaticRoute{primary, func() v1.StaticRoute {
				s := secondary
				s.DeletionTimestamp = &metav1.Time{Time: t0.Add(time.Hour)}
				return s
			}()},
			states: []v1.StaticRouteNodeState{node("a", applied("primary"))},
			want:   v1.StaticRouteStatus{Group: "primary", State: v1.StateActive, Nodes: "1/1", NodesSelected: 1, NodesApplied: 1},
		},
		"a conflict reported by a node makes the route Conflicted": {
			sr: primary, routes: []v1.StaticRoute{primary},
			states: []v1.StaticRouteNodeState{node("a", v1.NodeGroupState{Group: "primary", ActiveMember: "primary", State: v1.NodeGroupConflicted, Message: "x is routed by the older group y"})},
			want:   v1.StaticRouteStatus{Group: "primary", State: v1.StateConflicted, Nodes: "1/1", NodesSelected: 1, NodesApplied: 1},
		},
		"a gateway not on-link is failing, named": {
			sr: primary, routes: []v1.StaticRoute{primary},
			states: []v1.StaticRouteNodeState{node("z", v1.NodeGroupState{Group: "primary", ActiveMember: "primary", State: v1.NodeGroupGatewayNotOnLink})},
			want:   v1.StaticRouteStatus{Group: "primary", State: v1.StateActive, Nodes: "0/1", NodesSelected: 1, NodesFailed: 1, FailingNodes: []string{"z"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Status(&tc.sr, tc.routes, tc.states)
			got.Conditions, got.ObservedGeneration = nil, 0
			if got.Group != tc.want.Group || got.State != tc.want.State || got.Nodes != tc.want.Nodes ||
				got.NodesSelected != tc.want.NodesSelected || got.NodesApplied != tc.want.NodesApplied || got.NodesFailed != tc.want.NodesFailed ||
				len(got.FailingNodes) != len(tc.want.FailingNodes) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			for i := range got.FailingNodes {
				if got.FailingNodes[i] != tc.want.FailingNodes[i] {
					t.Fatalf("failing nodes %v, want %v", got.FailingNodes, tc.want.FailingNodes)
				}
			}
		})
	}
}

func TestStatusNamesAtMostTenFailingNodes(t *testing.T) {
	sr := route("r", "", 0)
	var states []v1.StaticRouteNodeState
	for i := range 25 {
		states = append(states, node(string(rune('a'+i)), v1.NodeGroupState{Group: "r", ActiveMember: "r", State: v1.NodeGroupError}))
	}
	got := Status(&sr, []v1.StaticRoute{sr}, states)
	if got.NodesFailed != 25 || len(got.FailingNodes) != v1.MaxFailingNodeNames || got.Nodes != "0/25" {
		t.Fatalf("%+v", got)
	}
}

// With health checks, a node that sees the newest member's gateway down
// carries the group on an older one: the newest says how many nodes are on
// a fallback (not failing), the older one is Fallback on those, and both
// say which nodes see which gateway down.
func TestStatusWithNodesOnAFallback(t *testing.T) {
	primary, secondary := route("primary", "", 0), route("secondary", "primary", time.Minute)
	gws := func(secondaryHealth string) []v1.NodeGatewayHealth {
		return []v1.NodeGatewayHealth{
			{Member: "primary", Gateway: "198.51.100.4", Health: v1.GatewayUp},
			{Member: "secondary", Gateway: "198.51.100.12", Health: secondaryHealth},
		}
	}
	on := func(member string, selection v1.Selection, secondaryHealth string) v1.NodeGroupState {
		return v1.NodeGroupState{Group: "primary", ActiveMember: member, State: v1.NodeGroupApplied, Selection: selection, Gateways: gws(secondaryHealth)}
	}
	states := []v1.StaticRouteNodeState{
		node("a", on("secondary", "Newest", v1.GatewayUp)),
		node("b", on("secondary", "Newest", v1.GatewayUp)),
		node("c", on("primary", "NewerDown", v1.GatewayDown)),
	}
	routes := []v1.StaticRoute{primary, secondary}
	newest := Status(&secondary, routes, states)
	if newest.State != v1.StateActive || newest.Nodes != "2/3" || newest.NodesOnFallback != 1 || newest.NodesFailed != 0 {
		t.Fatalf("the newest member: %+v", newest)
	}
	cond := func(s v1.StaticRouteStatus, typ string) metav1.Condition {
		for _, c := range s.Conditions {
			if c.Type == typ {
				return c
			}
		}
		t.Fatalf("no condition %s in %+v", typ, s.Conditions)
		return metav1.Condition{}
	}
	if c := cond(newest, "GatewayReachable"); c.Status != metav1.ConditionFalse || c.Reason != "DownOnSomeNodes" || c.Message != "gateway 198.51.100.12 is down as 1 of 3 nodes see it: c" {
		t.Errorf("GatewayReachable %+v", c)
	}
	if c := cond(newest, "Applied"); c.Status != metav1.ConditionTrue || c.Reason != "SomeOnFallback" {
		t.Errorf("Applied %+v", c)
	}
	older := Status(&primary, routes, states)
	if older.State != v1.StateFallback || older.Nodes != "1/3" {
		t.Fatalf("the older member: %+v", older)
	}
	if c := cond(older, "GatewayReachable"); c.Status != metav1.ConditionTrue || c.Reason != "UpOnAllNodes" {
		t.Errorf("the older member's GatewayReachable %+v", c)
	}
	// One Event on the newest member when nodes fall back, one when the
	// last comes back.
	before := Status(&secondary, routes, states[:2])
	if e := transition(before, newest); e == nil || e.reason != "AutomaticFailover" || e.note != "group primary: 1 of 3 nodes see this member's gateway down and carry the group on an older member" {
		t.Errorf("event on failover: %+v", e)
	}
	if e := transition(newest, before); e == nil || e.reason != "AutomaticFailback" {
		t.Errorf("event on failback: %+v", e)
	}
	// Without health checks no node reports gateways: no condition.
	plain := Status(&secondary, routes, []v1.StaticRouteNodeState{node("a", v1.NodeGroupState{Group: "primary", ActiveMember: "secondary", State: v1.NodeGroupApplied})})
	for _, c := range plain.Conditions {
		if c.Type == "GatewayReachable" {
			t.Errorf("a GatewayReachable condition without health checks: %+v", c)
		}
	}
}

// A status that only progresses (counts, names, messages) waits for
// ProgressInterval; a new state, or a condition that changes status or
// reason, for MinInterval only.
func TestWriteAfter(t *testing.T) {
	status := func(state, nodes, reason string) v1.StaticRouteStatus {
		return v1.StaticRouteStatus{Group: "g", State: state, Nodes: nodes, Conditions: []metav1.Condition{
			{Type: "Active", Status: metav1.ConditionTrue, Reason: "NewestMember"},
			{Type: "Applied", Status: metav1.ConditionFalse, Reason: reason, Message: "nodes " + nodes},
		}}
	}
	failing := status(v1.StateActive, "10/400", "NodesFailing")
	for name, tc := range map[string]struct {
		want v1.StaticRouteStatus
		wait time.Duration
	}{
		"more nodes applied": {status(v1.StateActive, "200/400", "NodesFailing"), ProgressInterval},
		"all applied": {func() v1.StaticRouteStatus {
			s := status(v1.StateActive, "400/400", "AllNodes")
			s.Conditions[1].Status = metav1.ConditionTrue
			return s
		}(), MinInterval},
		"a new state": {status(v1.StateConflicted, "10/400", "NodesFailing"), MinInterval},
		"a condition more": {func() v1.StaticRouteStatus {
			s := failing
			s.Conditions = append(slices.Clone(s.Conditions), metav1.Condition{Type: "GatewayReachable"})
			return s
		}(), MinInterval},
		"a new generation": {func() v1.StaticRouteStatus { s := failing; s.ObservedGeneration = 2; return s }(), MinInterval},
	} {
		if got := writeAfter(failing, tc.want); got != tc.wait {
			t.Errorf("%s: wait %v, want %v", name, got, tc.wait)
		}
	}
	if got := writeAfter(v1.StaticRouteStatus{}, failing); got != MinInterval {
		t.Errorf("a first status: wait %v, want %v", got, MinInterval)
	}
}

// A member over several gateways is reachable while all are up; one
// down on some nodes is named alone.
func TestGatewayReachableOverSeveralGateways(t *testing.T) {
	on := func(c string) v1.NodeGroupState {
		return v1.NodeGroupState{Group: "multi", ActiveMember: "multi", State: v1.NodeGroupApplied, Gateways: []v1.NodeGatewayHealth{
			{Member: "multi", Gateway: "198.51.100.4", Health: v1.GatewayUp},
			{Member: "multi", Gateway: "198.51.100.12", Health: c},
		}}
	}
	up := gatewayReachable("multi", "multi", []v1.StaticRouteNodeState{node("a", on(v1.GatewayUp)), node("b", on(v1.GatewayUp))})
	if up.Status != metav1.ConditionTrue || up.Message != "gateways 198.51.100.12, 198.51.100.4 are up as all 2 nodes that probe it see it" {
		t.Errorf("all up: %+v", up)
	}
	one := gatewayReachable("multi", "multi", []v1.StaticRouteNodeState{node("a", on(v1.GatewayUp)), node("b", on(v1.GatewayDown))})
	if one.Status != metav1.ConditionFalse || one.Reason != "DownOnSomeNodes" || one.Message != "gateway 198.51.100.12 is down as 1 of 2 nodes see it: b" {
		t.Errorf("one down on one node: %+v", one)
	}
}
