package policy_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go4.org/netipx"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
)

var (
	gwA, gwB, gwC = "198.51.100.4", "198.51.100.12", "198.51.100.20"
)

func lanesOf(g policy.Group) string {
	var out []string
	for _, l := range g.Lanes {
		out = append(out, l.Lane.String())
	}
	return strings.Join(out, "; ")
}

// A member with several gateways: one lane each, in slots of their own;
// the group's routes take the first lane that is open; a dead gateway's
// lane goes to the next one up; a member is up while any gateway is.
func TestComputeLanes(t *testing.T) {
	multi := policytest.WithCheck(policytest.Gateways("multi", "egress", []string{gwA, gwB, gwC}, time.Minute, "192.0.2.0/24"), "")
	single := policytest.WithCheck(policytest.Route("single", "egress", "198.51.100.30", 0, "192.0.2.0/24"), "")
	for _, tc := range []struct {
		name, states string // single's, then multi's A, B, C
		active       string
		selection    v1.Selection
		gateway      string
		lanes        string
	}{
		{"all up: the newest, three lanes", "UUUU", "multi", v1.SelectionNewest, gwA,
			"198.51.100.4 Up open; 198.51.100.12 Up open; 198.51.100.20 Up open"},
		{"B down: its lane goes to C", "UUDU", "multi", v1.SelectionNewest, gwA,
			"198.51.100.4 Up open; 198.51.100.12 Down away to 198.51.100.20; 198.51.100.20 Up open"},
		{"A down: the routes take B, A's lane goes to B", "UDUU", "multi", v1.SelectionNewest, gwB,
			"198.51.100.4 Down away to 198.51.100.12; 198.51.100.12 Up open; 198.51.100.20 Up open"},
		{"all of multi's down: the older member carries, no lanes", "UDDD", "single", v1.SelectionNewerDown, "198.51.100.30", ""},
		{"everything down: the newest fails closed through its own gateways", "DDDD", "multi", v1.SelectionAllDown, gwA,
			"198.51.100.4 Down open; 198.51.100.12 Down open; 198.51.100.20 Down open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := policy.Compute(policytest.WithHealth(policytest.Input(single, multi), tc.states))
			g := d.Groups[0]
			if g.Active != tc.active || g.Selection != tc.selection || g.Gateway.String() != tc.gateway || lanesOf(g) != tc.lanes {
				t.Fatalf("active %s (%s) via %s, lanes %q\nwant %s (%s) via %s, lanes %q\n%s", g.Active, g.Selection, g.Gateway, lanesOf(g),
					tc.active, tc.selection, tc.gateway, tc.lanes, d)
			}
			if len(d.Probes) != 4 {
				t.Errorf("probes %v, want one per gateway of each member", d.Probes)
			}
			if len(d.Lanes) != len(g.Lanes) {
				t.Errorf("the node's lanes %v, want the group's %v", d.Lanes, g.Lanes)
			}
			for _, r := range d.Routes {
				if r.Kind == policy.Via && r.Gateway != g.Gateway {
					t.Errorf("route %s, want via %s", r, g.Gateway)
				}
			}
		})
	}
	// Slots: distinct, never Istio's 0x39, and the same when another
	// group comes.
	d := policy.Compute(policytest.Input(multi))
	other := policytest.Gateways("other", "", []string{gwB, gwC}, 0, "198.19.0.0/16")
	d2 := policy.Compute(policytest.Input(multi, other))
	seen := map[int]bool{}
	for _, l := range d2.Lanes {
		if seen[l.Slot] || l.Slot == 0x39 || l.Slot < 1 || l.Slot > 63 {
			t.Errorf("lane slots %v: want distinct, in 1..63, never 0x39", d2.Lanes)
		}
		seen[l.Slot] = true
	}
	for _, l := range d.Lanes {
		if !seen[l.Slot] || len(d2.Lanes) != 5 {
			t.Errorf("slots moved when a group came: %v then %v", d.Lanes, d2.Lanes)
		}
	}
	// A gateway of several that is not on-link has no lane.
	in := policytest.Input(policytest.Gateways("far", "", []string{gwA, "198.51.100.200"}, 0, "192.0.2.0/24"))
	in.Node.OnLink = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25")}
	if g := policy.Compute(in).Groups[0]; lanesOf(g) != "198.51.100.4 Up open" || g.State != v1.NodeGroupApplied {
		t.Errorf("one gateway off-link: %s lanes %q, want one lane, A's", g.State, lanesOf(g))
	}
}

// After a restart, the kernel's lanes stand until the probes decide: a
// pending gateway whose lane was away stays away, and the kernel's
// carried gateway keeps a pending member on.
func TestComputeLanesAfterRestart(t *testing.T) {
	multi := policytest.WithCheck(policytest.Gateways("multi", "egress", []string{gwA, gwB, gwC}, time.Minute, "192.0.2.0/24"), "")
	older := policytest.WithCheck(policytest.Route("older", "egress", "198.51.100.30", 0, "192.0.2.0/24"), "")
	in := policytest.WithHealth(policytest.Input(older, multi), "PPPP")
	in.Carried = map[string]netip.Addr{"egress": netip.MustParseAddr(gwA)}
	first := policy.Compute(in)
	in.LaneTo = map[int]netip.Addr{}
	for _, l := range first.Lanes {
		in.LaneTo[l.Slot] = l.Gateway
		if l.Gateway.String() == gwB {
			in.LaneTo[l.Slot] = netip.MustParseAddr(gwC)
		}
	}
	g := policy.Compute(in).Groups[0]
	if want := "198.51.100.4 Pending open; 198.51.100.12 Pending away to 198.51.100.20; 198.51.100.20 Pending open"; g.Active != "multi" || lanesOf(g) != want {
		t.Fatalf("restarted during B's outage: %s with lanes %q, want multi with %q", g.Active, lanesOf(g), want)
	}
}

// Steered gives a group with lanes what the steering table's longest
// match gives it: its routes less the carve-outs and the more specific
// routes of other groups inside them.
func TestSteered(t *testing.T) {
	all := policytest.Gateways("all", "", []string{gwA, gwB}, time.Minute, "0.0.0.0/0")
	narrow := policytest.Route("narrow", "", gwC, 0, "192.0.2.0/24") // older: it keeps its /24
	d := policy.Compute(policytest.Input(all, narrow))
	got := d.Steered()
	if len(got) != 1 || got["all"] == nil {
		t.Fatalf("Steered() = %v, want the group with lanes alone", got)
	}
	set := got["all"]
	for addr, want := range map[string]bool{
		"198.19.0.1": true, "8.8.8.8": true, // the internet
		"192.0.2.7":    false,                                                                    // narrow's
		"198.51.100.7": false, "198.18.64.2": false, "198.18.128.1": false, "203.0.113.5": false, // VPC, pod, service, API server
		"127.0.0.1": false, "169.254.169.254": false, "224.0.0.1": false, // special
	} {
		if set.Contains(netip.MustParseAddr(addr)) != want {
			t.Errorf("%s in all's lane set: %t, want %t (%v)", addr, !want, want, set.Prefixes())
		}
	}
	var b netipx.IPSetBuilder
	b.AddSet(set)
	b.RemovePrefix(netip.MustParsePrefix("0.0.0.0/0"))
	if empty, _ := b.IPSet(); len(empty.Ranges()) != 0 {
		t.Errorf("a lane set beyond the group's route: %v", empty.Ranges())
	}
}

// A planned failover to a member with drainSeconds: while the old member
// is up and the drain lasts, its lanes stay (none open) and packets in no
// lane keep its gateway; the new member's lanes take new connections.
func TestComputeDrain(t *testing.T) {
	old := policytest.WithCheck(policytest.Route("old", "egress", "198.51.100.30", 0, "192.0.2.0/24"), "")
	next := policytest.WithCheck(policytest.Gateways("next", "egress", []string{gwA, gwB}, time.Minute, "192.0.2.0/24"), "")
	next.Spec.DrainSeconds = 30
	single := policytest.WithCheck(policytest.Route("single", "egress", gwC, time.Minute, "192.0.2.0/24"), "")
	single.Spec.DrainSeconds = 30
	at := func(d time.Duration) time.Time { return policytest.T0.Add(time.Minute + d) }
	for _, tc := range []struct {
		name   string
		routes []*v1.StaticRoute
		states string
		now    time.Time
		drain  string // the draining member, "" none
		via    string // the group's gateway (packets in no lane)
		lanes  string
	}{
		{"during the drain, to several gateways", []*v1.StaticRoute{old, next}, "UUU", at(10 * time.Second), "old", "198.51.100.30",
			"198.51.100.4 Up open; 198.51.100.12 Up open; 198.51.100.30 Up (draining)"},
		{"during the drain, to one gateway: it takes a lane", []*v1.StaticRoute{old, single}, "UU", at(10 * time.Second), "old", "198.51.100.30",
			"198.51.100.20 Up open; 198.51.100.30 Up (draining)"},
		{"after the drain", []*v1.StaticRoute{old, next}, "UUU", at(30 * time.Second), "", gwA,
			"198.51.100.4 Up open; 198.51.100.12 Up open"},
		{"the old gateway died: never drained to", []*v1.StaticRoute{old, next}, "DUU", at(10 * time.Second), "", gwA,
			"198.51.100.4 Up open; 198.51.100.12 Up open"},
		{"after the drain, to one gateway: no lanes", []*v1.StaticRoute{old, single}, "UU", at(40 * time.Second), "", gwC, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := policytest.WithHealth(policytest.Input(tc.routes...), tc.states)
			in.Now = tc.now
			d := policy.Compute(in)
			// The objects' order changes nothing.
			in.Routes = slices.Clone(in.Routes)
			slices.Reverse(in.Routes)
			if again := policy.Compute(in); again.String() != d.String() {
				t.Fatalf("the routes in another order give\n%s\nnot\n%s", again, d)
			}
			g := d.Groups[0]
			var lanes []string
			for _, l := range g.Lanes {
				s := l.Lane.String()
				if l.Draining {
					s += " (draining)"
				}
				lanes = append(lanes, s)
			}
			drain := ""
			if g.Drain != nil {
				drain = g.Drain.Member
				if !g.Drain.Until.Equal(at(30*time.Second)) || !slices.ContainsFunc(g.Lanes, func(l policy.Lane) bool { return l.Slot == g.Drain.Tag && l.Draining }) {
					t.Errorf("drain %+v: want until %s, tagging into a draining lane", g.Drain, at(30*time.Second))
				}
			}
			if drain != tc.drain || g.Gateway.String() != tc.via || strings.Join(lanes, "; ") != tc.lanes {
				t.Fatalf("draining %q via %s lanes %q\nwant %q via %s lanes %q\n%s", drain, g.Gateway, strings.Join(lanes, "; "), tc.drain, tc.via, tc.lanes, d)
			}
		})
	}
}
