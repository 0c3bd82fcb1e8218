package policy_test

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
)

// steered lists the non-throw routes, one string each.
func steered(d policy.Desired) []string {
	var out []string
	for _, r := range d.Routes {
		if r.Kind != policy.Throw {
			out = append(out, r.String())
		}
	}
	return out
}

func groupState(d policy.Desired, name string) (policy.Group, bool) {
	for _, g := range d.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return policy.Group{}, false
}

func TestCompute(t *testing.T) {
	tests := map[string]struct {
		in          policy.Input
		want        []string          // steered routes
		states      map[string]string // group -> state
		reasonHas   map[string]string // group -> piece of its reason
		throwsCover []string          // prefixes that must be thrown
	}{
		"a route is steered via its gateway, with the cluster thrown": {
			in:          policytest.Input(policytest.Route("primary", "", "198.51.100.4", 0, "192.0.2.7")),
			want:        []string{"192.0.2.7/32 via 198.51.100.4 (group primary)"},
			states:      map[string]string{"primary": v1.NodeGroupApplied},
			throwsCover: []string{"198.51.100.0/24", "198.18.64.0/18", "198.18.128.0/18", "203.0.113.5/32", "203.0.113.0/26", "169.254.0.0/16", "127.0.0.0/8"},
		},
		"the newest member of a group is active": {
			in: policytest.Input(
				policytest.Route("primary", "", "198.51.100.4", 0, "192.0.2.7"),
				policytest.Route("secondary", "primary", "198.51.100.12", time.Minute, "192.0.2.7"),
			),
			want:   []string{"192.0.2.7/32 via 198.51.100.12 (group primary)"},
			states: map[string]string{"primary": v1.NodeGroupApplied},
		},
		"members created in the same second: the greater name is active": {
			in: policytest.Input(
				policytest.Route("b-second", "g", "198.51.100.12", 0, "192.0.2.7"),
				policytest.Route("a-first", "g", "198.51.100.4", 0, "192.0.2.7"),
			),
			want: []string{"192.0.2.7/32 via 198.51.100.12 (group g)"},
		},
		"a member being deleted no longer counts (failback)": {
			in: func() policy.Input {
				s := policytest.Route("secondary", "primary", "198.51.100.12", time.Minute, "192.0.2.7")
				s.DeletionTimestamp = &metav1.Time{Time: policytest.T0.Add(time.Hour)}
				s.Finalizers = []string{"kopf.zalando.org/KopfFinalizerMarker"}
				return policytest.Input(policytest.Route("primary", "", "198.51.100.4", 0, "192.0.2.7"), s)
			}(),
			want: []string{"192.0.2.7/32 via 198.51.100.4 (group primary)"},
		},
		"0.0.0.0/0 is steered while the cluster, connected and special ranges are thrown": {
			in:          policytest.Input(policytest.Route("all", "", "198.51.100.4", 0, "0.0.0.0/0")),
			want:        []string{"0.0.0.0/0 via 198.51.100.4 (group all)"},
			throwsCover: []string{"198.51.100.0/24", "203.0.113.0/26", "203.0.113.5/32", "224.0.0.0/4", "0.0.0.0/8"},
		},
		"a gateway not on-link makes its destinations unreachable": {
			in: func() policy.Input {
				in := policytest.Input(policytest.Route("far", "", "198.51.100.4", 0, "192.0.2.7"))
				in.Node.OnLink = []netip.Prefix{netip.MustParsePrefix("198.51.100.128/25")}
				return in
			}(),
			want:      []string{"unreachable 192.0.2.7/32 (group far)"},
			states:    map[string]string{"far": v1.NodeGroupGatewayNotOnLink},
			reasonHas: map[string]string{"far": "not on-link"},
		},
		"a destination inside a cluster range is never steered, even if admission was bypassed": {
			in:        policytest.Input(policytest.Route("bad", "", "198.51.100.4", 0, "198.18.64.7", "192.0.2.7")),
			want:      []string{"192.0.2.7/32 via 198.51.100.4 (group bad)"},
			reasonHas: map[string]string{"bad": "198.18.64.7/32 lies inside the pod CIDR"},
		},
		"overlapping groups: the older keeps the overlap, the younger the rest, and says Conflicted": {
			in: policytest.Input(
				policytest.Route("young", "", "198.51.100.12", time.Minute, "192.0.2.0/24", "198.19.0.7"),
				policytest.Route("old", "", "198.51.100.4", 0, "192.0.2.0/25", "198.19.0.0/16"),
			),
			want: []string{
				"192.0.2.0/24 via 198.51.100.12 (group young)",
				"192.0.2.0/25 via 198.51.100.4 (group old)",
				"198.19.0.0/16 via 198.51.100.4 (group old)",
			},
			states:    map[string]string{"old": v1.NodeGroupApplied, "young": v1.NodeGroupConflicted},
			reasonHas: map[string]string{"young": "198.19.0.7/32 is routed by the older group old"},
		},
		"a group's age is its oldest live member's": {
			in: policytest.Input(
				policytest.Route("a", "", "198.51.100.4", 10*time.Second, "192.0.2.7"),
				policytest.Route("b1", "b", "198.51.100.12", 0, "198.19.0.1"),
				policytest.Route("b2", "b", "198.51.100.12", time.Minute, "192.0.2.7"),
			),
			// b's first member predates a, so b keeps 192.0.2.7 although
			// its active member b2 is newer than a.
			want:   []string{"192.0.2.7/32 via 198.51.100.12 (group b)"},
			states: map[string]string{"a": v1.NodeGroupConflicted, "b": v1.NodeGroupApplied},
		},
		"a nodeSelector that does not match leaves the node out": {
			in: func() policy.Input {
				s := policytest.Route("other-pool", "", "198.51.100.4", 0, "192.0.2.7")
				s.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "batch"}}
				return policytest.Input(s)
			}(),
			want: nil,
		},
		"a matching nodeSelector selects the node": {
			in: func() policy.Input {
				s := policytest.Route("egress", "", "198.51.100.4", 0, "192.0.2.7")
				s.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "egress"}}
				return policytest.Input(s)
			}(),
			want: []string{"192.0.2.7/32 via 198.51.100.4 (group egress)"},
		},
		"a gateway outside the VPC fails closed": {
			in:     policytest.Input(policytest.Route("outside", "", "203.0.113.9", 0, "192.0.2.7")),
			want:   []string{"unreachable 192.0.2.7/32 (group outside)"},
			states: map[string]string{"outside": v1.NodeGroupError},
		},
		"no routes: an empty table, no carve-outs": {
			in:   policytest.Input(),
			want: nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := policy.Compute(tc.in)
			if got := steered(d); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("steered routes:\n got %q\nwant %q\nstate:\n%s", got, tc.want, d)
			}
			for g, st := range tc.states {
				if gs, _ := groupState(d, g); gs.State != st {
					t.Errorf("group %s state %q, want %q (%s)", g, gs.State, st, gs.Reason)
				}
			}
			for g, r := range tc.reasonHas {
				if gs, _ := groupState(d, g); !strings.Contains(gs.Reason, r) {
					t.Errorf("group %s reason %q lacks %q", g, gs.Reason, r)
				}
			}
			throws := map[string]bool{}
			for _, r := range d.Routes {
				if r.Kind == policy.Throw {
					throws[r.Prefix.String()] = true
				}
			}
			for _, p := range tc.throwsCover {
				if !throws[p] {
					t.Errorf("no throw for %s in\n%s", p, d)
				}
			}
			if len(tc.want) == 0 && len(throws) > 0 {
				t.Errorf("carve-outs without anything to carve them from:\n%s", d)
			}
		})
	}
}

// Every router must compute the same state whatever order its cache
// delivered the objects in.
func TestComputeIgnoresArrivalOrder(t *testing.T) {
	routes := []*v1.StaticRoute{
		policytest.Route("old", "", "198.51.100.4", 0, "192.0.2.0/25", "198.19.0.0/16"),
		policytest.Route("young", "", "198.51.100.12", time.Minute, "192.0.2.0/24", "198.19.0.7"),
		policytest.Route("young-b", "young", "198.51.100.13", time.Minute, "192.0.2.0/24"),
		policytest.Route("same-second-a", "s", "198.51.100.4", 2*time.Minute, "198.18.0.1"),
		policytest.Route("same-second-b", "s", "198.51.100.12", 2*time.Minute, "198.18.0.1"),
		policytest.Route("all", "", "198.51.100.4", 3*time.Minute, "0.0.0.0/0"),
	}
	want := policy.Compute(policytest.Input(routes...)).String()
	rng := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		shuffled := append([]*v1.StaticRoute(nil), routes...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := policy.Compute(policytest.Input(shuffled...)).String(); got != want {
			t.Fatalf("order changed the state:\n got\n%s\nwant\n%s", got, want)
		}
	}
}

// Health decides the active member per node: the newest whose gateway is
// up; none up: the newest (fail closed). Every checked member of a group
// that selects the node is probed, active or not, one probe per path.
func TestComputeFollowsHealth(t *testing.T) {
	a := policytest.WithCheck(policytest.Route("a", "egress", "198.51.100.4", 0, "192.0.2.0/24"), "192.0.2.7")
	b := policytest.WithCheck(policytest.Route("b", "egress", "198.51.100.12", time.Minute, "192.0.2.0/24"), "192.0.2.7")
	unchecked := policytest.Route("c", "other", "198.51.100.4", 0, "198.19.0.0/16")
	pathOf := func(r *v1.StaticRoute) group.Path { p, _ := group.ProbeOf(r); return p.Path }
	for _, tc := range []struct {
		name      string
		states    string // a's and b's: U up, D down, P pending, d damped
		carried   string // the gateway the group takes now ("" none)
		active    string
		selection v1.Selection
	}{
		{"all up: the newest", "UU", "", "b", v1.SelectionNewest},
		{"the newest down: the next", "UD", "", "a", v1.SelectionNewerDown},
		{"an older one down: still the newest", "DU", "", "b", v1.SelectionNewest},
		{"all down: the newest, failing closed", "DD", "", "b", v1.SelectionAllDown},
		{"a new member not proven yet takes nothing over", "UP", a.Spec.Gateway, "a", v1.SelectionNewerDown},
		{"a restart keeps the kernel's choice while both are pending", "PP", a.Spec.Gateway, "a", v1.SelectionNewerDown},
		{"and the newest when the kernel carries it", "PP", b.Spec.Gateway, "b", v1.SelectionNewest},
		{"a damped member yields to one that is up", "Ud", b.Spec.Gateway, "a", v1.SelectionNewerDown},
		{"and carries when nothing else is up", "Dd", a.Spec.Gateway, "b", v1.SelectionNewest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := policytest.Input(a, b, unchecked)
			in.Health = map[group.Path]group.State{}
			for i, r := range []*v1.StaticRoute{a, b} {
				in.Health[pathOf(r)] = map[byte]group.State{'U': group.Up, 'D': group.Down, 'P': group.Pending, 'd': group.Damped}[tc.states[i]]
			}
			if tc.carried != "" {
				in.Carried = map[string]netip.Addr{"egress": netip.MustParseAddr(tc.carried)}
			}
			d := policy.Compute(in)
			g := d.Groups[0]
			if g.Name != "egress" || g.Active != tc.active || g.Selection != tc.selection {
				t.Fatalf("group %s: active %s (%s), want %s (%s)\n%s", g.Name, g.Active, g.Selection, tc.active, tc.selection, d)
			}
			if len(d.Probes) != 2 || d.Probes[0].Slot == d.Probes[1].Slot || d.Probes[0].Slot < 1 || d.Probes[0].Slot > policy.MaxProbes {
				t.Fatalf("probes %v, want one per checked member, in distinct slots", d.Probes)
			}
			if len(g.Members) != 2 || g.Members[0].Name != "a" || !g.Members[0].Checked {
				t.Fatalf("members %+v", g.Members)
			}
			if other := d.Groups[1]; other.Active != "c" || other.Selection != v1.SelectionNewest || len(other.Members) != 1 || other.Members[0].Checked {
				t.Fatalf("the group without checks: %+v", other)
			}
		})
	}
	// A checked gateway that is not on-link cannot be probed: down.
	in := policytest.Input(a, b)
	in.Node.OnLink = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/29")} // .4 on-link, .12 not
	if d := policy.Compute(in); d.Groups[0].Active != "a" || d.Groups[0].Selection != v1.SelectionNewerDown || len(d.Probes) != 1 {
		t.Fatalf("b's gateway off-link: %s", d)
	}
	// Two members probing the same path share one probe; tuning keeps
	// the slot.
	b2 := policytest.WithCheck(policytest.Route("b2", "egress", "198.51.100.12", 2*time.Minute, "192.0.2.0/24"), "192.0.2.7")
	b2.Spec.HealthCheck.PeriodMilliseconds = 100
	d := policy.Compute(policytest.Input(a, b, b2))
	if len(d.Probes) != 2 {
		t.Fatalf("probes %v, want 2 (b and b2 share a path)", d.Probes)
	}
	before := policy.Compute(policytest.Input(a, b)).Probes
	for i := range before {
		if before[i].Slot != d.Probes[i].Slot || before[i].Path != d.Probes[i].Path {
			t.Fatalf("slots moved: %v then %v", before, d.Probes)
		}
	}
}
