package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func route(name, group string, age time.Duration, sel map[string]string) v1.StaticRoute {
	sr := v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))}, Spec: v1.StaticRouteSpec{Group: group, Gateway: "10.116.0.4", Destinations: []string{"34.160.111.145"}}}
	if sel != nil {
		sr.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: sel}
	}
	return sr
}

// Members come oldest first, the active one last, by the rule the webhook
// and the nodes use: creation time, then name. Other groups and routes
// being deleted are left out.
func TestMembersInTheNodesOrder(t *testing.T) {
	gone := route("gone", "primary", 3*time.Minute, nil)
	gone.DeletionTimestamp = &metav1.Time{Time: t0}
	rs := []v1.StaticRoute{
		route("zeta", "primary", time.Minute, nil), // same second as alpha: the greater name is newer
		route("primary", "", 0, nil),
		route("alpha", "primary", time.Minute, nil),
		route("other", "", 2*time.Minute, nil),
		gone,
	}
	var got []string
	for _, m := range group.Members(rs, "primary") {
		got = append(got, m.Name)
	}
	if want := "primary alpha zeta"; strings.Join(got, " ") != want {
		t.Fatalf("members %v, want %s", got, want)
	}
}

func TestSelectedAndRoutes(t *testing.T) {
	nodes := []corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"pool": "egress"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"pool": "egress"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "c"}},
	}
	sr := route("r", "", 0, map[string]string{"pool": "egress"})
	got, err := selected(&sr, nodes)
	if err != nil || strings.Join(got, " ") != "a b" {
		t.Fatalf("selected %v %v", got, err)
	}
	all := route("r", "", 0, nil)
	if got, _ := selected(&all, nodes); strings.Join(got, " ") != "a b c" {
		t.Fatalf("no selector selected %v", got)
	}
	s := &v1.StaticRouteNodeState{Status: v1.StaticRouteNodeStateStatus{Groups: []v1.NodeGroupState{{Group: "primary", ActiveMember: "secondary", State: v1.NodeGroupApplied}}}}
	if !routes(s, "primary", "secondary") || routes(s, "primary", "primary") || routes(nil, "primary", "secondary") {
		t.Fatal("routes misread the node state")
	}
	s.Status.Groups[0].State = v1.NodeGroupGatewayNotOnLink
	if routes(s, "primary", "secondary") {
		t.Fatal("a node whose gateway is not on-link does not route it")
	}
}

// The member rows count the node reports printed under them: the demo's
// step 7 once printed primary "Fallback 1/3" (a summary written before
// the last two nodes moved) above three nodes that all carried primary.
func TestMemberRowsAgreeWithTheNodeRows(t *testing.T) {
	primary, secondary := route("primary", "", 0, nil), route("secondary", "primary", time.Minute, nil)
	secondary.Status.State, secondary.Status.Nodes = v1.StateActive, "2/3" // stale: ignored
	primary.Status.State, primary.Status.Nodes, primary.Status.NodesOnFallback = v1.StateFallback, "1/3", 1
	ms := []*v1.StaticRoute{&primary, &secondary}
	on := func(member, state string) v1.NodeGroupState {
		return v1.NodeGroupState{Group: "primary", ActiveMember: member, State: state}
	}
	for name, tc := range map[string]struct {
		reports []v1.NodeGroupState
		want    string
	}{
		"every node on the older member": {[]v1.NodeGroupState{on("primary", v1.NodeGroupApplied), on("primary", v1.NodeGroupApplied), on("primary", v1.NodeGroupApplied)},
			"primary Fallback 3/3 0; secondary Active 0/3 3"},
		"every node on the newest": {[]v1.NodeGroupState{on("secondary", v1.NodeGroupApplied), on("secondary", v1.NodeGroupApplied), on("secondary", v1.NodeGroupApplied)},
			"primary Standby - 0; secondary Active 3/3 0"},
		"one node on the older, one failing": {[]v1.NodeGroupState{on("primary", v1.NodeGroupApplied), on("secondary", v1.NodeGroupApplied), on("secondary", v1.NodeGroupError)},
			"primary Fallback 1/3 0; secondary Active 1/3 1"},
		"no reports": {nil, "primary Standby - 0; secondary Active 0/0 0"},
	} {
		var got []string
		for i, r := range memberRows(ms, tc.reports) {
			got = append(got, fmt.Sprintf("%s %s %s %d", ms[i].Name, r.Role, r.Nodes, r.OnFallback))
		}
		if strings.Join(got, "; ") != tc.want {
			t.Errorf("%s: %s, want %s", name, strings.Join(got, "; "), tc.want)
		}
	}
}
