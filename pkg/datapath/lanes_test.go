package datapath

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
	"github.com/staticroute/staticroute/test/netlab"
)

// Gateway C of the lanes' world, beside the world's A and B.
const (
	gwCVPC    = "198.51.100.20"
	gwCPublic = "203.0.113.52"
)

// laneWorld is the world with a third gateway, the TCP echo, and a
// Datapath in its node that applies a group over A, B and C with their
// health as given.
type laneWorld struct {
	*netlab.World
	GwC   *netlab.NS
	dp    *Datapath
	route func() policy.Input
}

func newLaneWorld(t *testing.T) *laneWorld {
	w := &laneWorld{World: netlab.NewWorld(t)}
	w.GwC = w.AddGateway(t, gwCVPC, gwCPublic)
	netlab.StartTCPEcho(t, w.Inet, netlab.TCPEchoPort)
	k, f := newKernel(t, w.Node), newFirewall(t, w.Node)
	w.dp = &Datapath{Routes: k, Firewall: f, Marks: &ValidMarks{Kernel: k, Firewall: f}}
	r := policytest.WithCheck(policytest.Gateways("spread", "", []string{netlab.GwAVPC, netlab.GwBVPC, gwCVPC}, 0, netlab.EchoAddr), "")
	w.route = func() policy.Input { return worldInput(r) }
	return w
}

// apply applies the group with A, B and C in states (U up, D down).
func (w *laneWorld) apply(t *testing.T, states string) Applied {
	t.Helper()
	d := policy.Compute(policytest.WithHealth(w.route(), states))
	a, err := w.dp.Apply(d)
	if err != nil {
		t.Fatalf("applying %s: %v\n%s", states, err, d)
	}
	return a
}

// spread counts the flows by the one source each has had; a flow with
// none or several is an error.
func spread(t *testing.T, what string, sources [][]netip.Addr) map[string]int {
	t.Helper()
	by, odd := netlab.BySource(sources)
	for _, o := range odd {
		t.Errorf("%s: %s: want exactly one source", what, o)
	}
	return by
}

var publicOf = map[string]string{netlab.GwAPublic: "A", netlab.GwBPublic: "B", gwCPublic: "C", netlab.NodePublic: "the node's own address"}

// Connections spread over a group's gateways, keep theirs for life, and
// when one gateway dies only its connections move (to the next gateway
// that is up), while the others lose nothing; when it comes back the
// moved connections stay where they went and new ones take it again;
// when all are dead nothing leaks.
func TestLanesSpreadPinAndMove(t *testing.T) {
	w := newLaneWorld(t)
	w.apply(t, "UUU")
	all := netlab.StartFlows(t, 25, w.Node, w.Pod)
	time.Sleep(500 * time.Millisecond)
	first := all.Sources()
	by := spread(t, "all up", first)
	for _, gw := range []string{netlab.GwAPublic, netlab.GwBPublic, gwCPublic} {
		// 100 flows over 3 gateways: ±15% of 33.3.
		if n := by[gw]; n < 29 || n > 38 {
			t.Errorf("all up: %d of 100 flows via %s (%v), want 29..38", n, publicOf[gw], by)
		}
	}
	t.Logf("all up: flows by gateway %v", by)

	// B dies.
	w.GwB.IP(t, "link", "set", "vpc", "down")
	dead := time.Now()
	a := w.apply(t, "UDU")
	switched := time.Now()
	// What a restarted router reads back: B's lane leads to C.
	_, laneTo, err := w.dp.Routes.(*Kernel).Carried(nil)
	if err != nil {
		t.Fatal(err)
	}
	if to := slices.SortedFunc(maps.Values(laneTo), netip.Addr.Compare); len(to) != 3 || to[0].String() != netlab.GwAVPC || to[1].String() != gwCVPC || to[2].String() != gwCVPC {
		t.Errorf("B dead: the kernel's lanes lead to %v, want A, C and C", laneTo)
	}
	time.Sleep(time.Second)
	after := all.Sources()
	moved, onB, tcpBroken := 0, 0, 0
	for i := range first {
		was := first[i][0].String()
		switch {
		case was == netlab.GwBPublic && i < len(all.UDP):
			onB++
			// B's UDP flows now leave by C, the next gateway up.
			if got := after[i]; len(got) != 2 || got[1].String() != gwCPublic {
				t.Errorf("B dead: UDP flow %d (was on B) has had %v, want B then C", i, got)
			}
			if at, ok := all.UDP[i].FirstAfter(gwCPublic, dead); ok {
				moved++
				if at.Sub(switched) > 100*time.Millisecond {
					t.Errorf("B dead: UDP flow %d first answered via C %s after the switch", i, at.Sub(switched))
				}
			}
		case was == netlab.GwBPublic:
			// B's TCP connections move too; their NAT state stayed on B.
			if _, _, err := all.TCP[i-len(all.UDP)].State(); err != nil {
				tcpBroken++
			}
		case i < len(all.UDP):
			if lost := all.UDP[i].LostBetween(dead.Add(-100*time.Millisecond), time.Now().Add(-200*time.Millisecond)); lost > 0 || len(after[i]) != 1 {
				t.Errorf("B dead: UDP flow %d on %s lost %d probes, sources %v: want none lost, one source", i, publicOf[was], lost, after[i])
			}
		default:
			if _, _, err := all.TCP[i-len(all.UDP)].State(); err != nil || len(after[i]) != 1 {
				t.Errorf("B dead: TCP flow %d on %s: %v, sources %v: want it standing, one source", i, publicOf[was], err, after[i])
			}
		}
	}
	t.Logf("B dead: %d of B's %d UDP flows answered via C; %d of its TCP connections broke; the switch %s after the apply began (lanes moved: %d)",
		moved, onB, tcpBroken, a.ToSwitch, a.Moved)

	// New connections while B is dead take A and C only.
	fresh := netlab.StartFlows(t, 6, w.Node, w.Pod)
	time.Sleep(400 * time.Millisecond)
	if by := spread(t, "new while B is dead", fresh.Sources()); by[netlab.GwBPublic] > 0 || by[netlab.GwAPublic] < 10 || by[gwCPublic] < 10 {
		t.Errorf("new connections while B is dead: %v, want A and C, half each", by)
	}

	// B comes back: what moved stays on C; new connections take B again.
	w.GwB.IP(t, "link", "set", "vpc", "up")
	back := time.Now()
	w.apply(t, "UUU")
	later := netlab.StartFlows(t, 6, w.Node, w.Pod)
	time.Sleep(600 * time.Millisecond)
	final := all.Sources()
	for i := range first {
		if first[i][0].String() == netlab.GwBPublic && i < len(all.UDP) {
			if got := final[i]; !slices.Equal(got, after[i]) {
				t.Errorf("B back: UDP flow %d (moved to C) has had %v, want it to stay on C (%v)", i, got, after[i])
			}
			if at, ok := all.UDP[i].FirstAfter(netlab.GwBPublic, back); ok {
				t.Errorf("B back: UDP flow %d went back to B at %s", i, at)
			}
		}
	}
	if by := spread(t, "new after B came back", later.Sources()); by[netlab.GwBPublic] < 6 {
		t.Errorf("new connections after B came back: %v, want B to take a third", by)
	}

	// Every gateway dead: the group fails closed.
	for _, gw := range []*netlab.NS{w.GwA, w.GwB, w.GwC} {
		gw.IP(t, "link", "set", "vpc", "down")
	}
	w.apply(t, "DDD")
	closed := time.Now()
	time.Sleep(500 * time.Millisecond)
	for i, p := range slices.Concat(all.UDP, fresh.UDP, later.UDP) {
		if at, ok := p.FirstAfter(netlab.NodePublic, time.Time{}); ok {
			t.Errorf("UDP flow %d leaked through the node's own address at %s", i, at)
		}
		for _, gw := range []string{netlab.GwAPublic, netlab.GwBPublic, gwCPublic} {
			if at, ok := p.FirstAfter(gw, closed.Add(100*time.Millisecond)); ok {
				t.Errorf("UDP flow %d answered via %s at %s with every gateway dead", i, publicOf[gw], at)
			}
		}
	}
	for i, s := range slices.Concat(all.Sources(), fresh.Sources(), later.Sources()) {
		if slices.Contains(s, netip.MustParseAddr(netlab.NodePublic)) {
			t.Errorf("flow %d leaked through the node's own address: %v", i, s)
		}
	}
}

// A planned failover with drainSeconds on the real kernel: from a group
// on A to a member over B and C that drains 30 s. While the drain lasts,
// every connection from before keeps A (no TCP connection breaks, no
// source changes) and is counted, and every new one takes B or C; when
// it ends, the old ones move.
func TestLanesDrain(t *testing.T) {
	w := newLaneWorld(t)
	old := policytest.WithCheck(policytest.Route("old", "egress", netlab.GwAVPC, 0, netlab.EchoAddr), "")
	next := policytest.WithCheck(policytest.Gateways("next", "egress", []string{netlab.GwBVPC, gwCVPC}, time.Minute, netlab.EchoAddr), "")
	next.Spec.DrainSeconds = 30
	apply := func(now time.Duration, routes ...*v1.StaticRoute) Applied {
		in := policytest.WithHealth(worldInput(routes...), strings.Repeat("U", 3))
		in.Now = policytest.T0.Add(now)
		a, err := w.dp.Apply(policy.Compute(in))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	apply(0, old)
	before := netlab.StartFlows(t, 10, w.Node, w.Pod)
	time.Sleep(300 * time.Millisecond)
	if by := spread(t, "on A", before.Sources()); by[netlab.GwAPublic] != 40 {
		t.Fatalf("before the failover: %v, want all 40 via A", by)
	}
	apply(time.Minute+time.Second, old, next)
	time.Sleep(300 * time.Millisecond)
	a := apply(time.Minute+2*time.Second, old, next) // the next reconcile counts them
	after := netlab.StartFlows(t, 10, w.Node, w.Pod)
	time.Sleep(time.Second)
	if by := spread(t, "draining", before.Sources()); by[netlab.GwAPublic] != 40 {
		t.Errorf("during the drain, the connections from before: %v, want all 40 still via A", by)
	}
	for i, f := range before.TCP {
		if _, _, err := f.State(); err != nil {
			t.Errorf("during the drain, TCP connection %d broke: %v", i, err)
		}
	}
	if by := spread(t, "new during the drain", after.Sources()); by[netlab.GwBPublic] != 20 || by[gwCPublic] != 20 {
		t.Errorf("new connections during the drain: %v, want 20 via B and 20 via C", by)
	}
	if a.Draining["egress"] != 40 {
		t.Errorf("draining connections counted: %v, want 40", a.Draining)
	}
	t.Logf("draining: %v", a.Draining)

	// The drain ends: what is left moves, as at a failover without one.
	ended := time.Now()
	if a := apply(time.Minute+31*time.Second, old, next); a.Draining != nil {
		t.Errorf("after the drain, still counted draining: %v", a.Draining)
	}
	time.Sleep(500 * time.Millisecond)
	for i, p := range before.UDP {
		if _, ok := p.FirstAfter(netlab.GwBPublic, ended); !ok {
			t.Errorf("after the drain: UDP flow %d from before did not move to B (sources %v)", i, p.Sources())
		}
	}
	for i, s := range slices.Concat(before.Sources(), after.Sources()) {
		if slices.Contains(s, netip.MustParseAddr(netlab.NodePublic)) {
			t.Errorf("flow %d leaked through the node's own address: %v", i, s)
		}
	}
}
