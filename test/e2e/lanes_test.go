package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// Gateway C, beside the world's A and B.
const (
	gwCVPC    = "198.51.100.20"
	gwCPublic = "203.0.113.52"
)

// gatewaysRouteYAML is a StaticRoute over several gateways, each probed
// beyond itself at target with the defaults (ICMP every 200 ms, 3 in a
// row).
func gatewaysRouteYAML(name string, gws []string, target string, dests ...string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: %s}
spec:
  destinations: ["%s"]
  gateways: ["%s"]
  healthCheck: {target: %q}
`, name, strings.Join(dests, `", "`), strings.Join(gws, `", "`), target))
}

// lanesOn waits until every node reports group's lanes as want says
// (gateway → open), and returns how long that took.
func lanesOn(t *testing.T, c *cluster, group string, want map[string]bool) time.Duration {
	t.Helper()
	start := time.Now()
	err := framework.Eventually(context.Background(), 20*time.Second, func() error {
		for _, n := range c.names {
			g, ok := groupOn(t, c, n, group)
			if !ok || len(g.Lanes) != len(want) {
				return fmt.Errorf("%s reports lanes %+v", n, g.Lanes)
			}
			for _, l := range g.Lanes {
				if open, ok := want[l.Gateway]; !ok || open != l.Open {
					return fmt.Errorf("%s reports lanes %+v, want open %v", n, g.Lanes, want)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestActiveActive: a group over three gateways on two nodes, run by the
// real routers with their health checks. Connections from the nodes and
// from a pod spread over the three, each keeps its gateway; when B dies,
// each node's probes see it and only B's connections move, within a
// second, while the others lose nothing; when B comes back, what moved
// stays and new connections take B again; with every gateway dead,
// nothing leaks.
func TestActiveActive(t *testing.T) {
	c := startCluster(t, 2)
	gwC := c.w.AddGateway(t, gwCVPC, gwCPublic)
	netlab.StartTCPEcho(t, c.w.Inet, netlab.TCPEchoPort)
	gws := []string{netlab.GwAVPC, netlab.GwBVPC, gwCVPC}
	c.cp.MustKubectl(t, gatewaysRouteYAML("spread", gws, netlab.EchoAddr, netlab.EchoAddr), "apply", "-f", "-")
	lanesOn(t, c, "spread", map[string]bool{netlab.GwAVPC: true, netlab.GwBVPC: true, gwCVPC: true})
	from := []*netlab.NS{c.w.Nodes[0], c.w.Nodes[1], c.w.Pod}
	flows := netlab.StartFlows(t, 25, from...)
	time.Sleep(time.Second)
	first := flows.Sources()
	// Each origin's 50 flows (25 UDP, 25 TCP) over three gateways:
	// within ±15% of 16.7.
	for o, name := range []string{"node-0", "node-1", "the pod"} {
		var of [][]netip.Addr
		for i := range 25 {
			of = append(of, first[o*25+i], first[len(flows.UDP)+o*25+i])
		}
		by, odd := netlab.BySource(of)
		t.Logf("%s: flows by gateway %v", name, by)
		for _, gw := range []string{netlab.GwAPublic, netlab.GwBPublic, gwCPublic} {
			if n := by[gw]; n < 14 || n > 19 {
				t.Errorf("%s: %d of 50 flows via %s (%v), want 14..19", name, n, gw, by)
			}
		}
		if len(odd) > 0 {
			t.Errorf("%s: flows with other than one source: %v", name, odd)
		}
	}

	// B dies; each node's probes see it.
	c.w.GwB.IP(t, "link", "set", "vpc", "down")
	dead := time.Now()
	err := framework.Eventually(context.Background(), 10*time.Second, func() error {
		for i, p := range flows.UDP {
			if first[i][0].String() != netlab.GwBPublic {
				continue
			}
			if _, ok := p.FirstAfter(gwCPublic, dead); !ok {
				return fmt.Errorf("UDP flow %d (on B) not answered via C yet", i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var moves []time.Duration
	for i, p := range flows.UDP {
		if first[i][0].String() == netlab.GwBPublic {
			at, _ := p.FirstAfter(gwCPublic, dead)
			moves = append(moves, at.Sub(dead))
		}
	}
	p50, _, slowest := quantiles(moves)
	t.Logf("B dead: its %d UDP flows answered via C after %s (median), %s (the last)", len(moves), p50, slowest)
	if slowest > time.Second {
		t.Errorf("B dead: the last of B's flows moved %s after it died, want within 1 s", slowest)
	}
	time.Sleep(500 * time.Millisecond)
	after := flows.Sources()
	for i := range first {
		if first[i][0].String() == netlab.GwBPublic {
			continue
		}
		if i < len(flows.UDP) {
			if lost := flows.UDP[i].LostBetween(dead.Add(-50*time.Millisecond), time.Now().Add(-300*time.Millisecond)); lost > 0 || len(after[i]) != 1 {
				t.Errorf("B dead: UDP flow %d on %s lost %d probes, sources %v: want none, one source", i, first[i][0], lost, after[i])
			}
		} else if _, _, err := flows.TCP[i-len(flows.UDP)].State(); err != nil || len(after[i]) != 1 {
			t.Errorf("B dead: TCP flow %d on %s: %v, sources %v: want it standing, one source", i, first[i][0], err, after[i])
		}
	}
	lanesOn(t, c, "spread", map[string]bool{netlab.GwAVPC: true, netlab.GwBVPC: false, gwCVPC: true})
	fresh := netlab.StartFlows(t, 6, from...)
	time.Sleep(500 * time.Millisecond)
	if by, _ := netlab.BySource(fresh.Sources()); by[netlab.GwBPublic] > 0 {
		t.Errorf("new connections while B is dead: %v, want none via B", by)
	}

	// B comes back: what moved stays on C, new connections take B.
	c.w.GwB.IP(t, "link", "set", "vpc", "up")
	back := time.Now()
	t.Logf("B back: every node opens its lane again after %s", lanesOn(t, c, "spread", map[string]bool{netlab.GwAVPC: true, netlab.GwBVPC: true, gwCVPC: true}))
	later := netlab.StartFlows(t, 6, from...)
	time.Sleep(500 * time.Millisecond)
	for i, p := range flows.UDP {
		if first[i][0].String() != netlab.GwBPublic {
			continue
		}
		if at, ok := p.FirstAfter(netlab.GwBPublic, back); ok {
			t.Errorf("B back: UDP flow %d, moved to C, went back to B at %s", i, at.Sub(back))
		}
	}
	if by, _ := netlab.BySource(later.Sources()); by[netlab.GwBPublic] < 9 {
		t.Errorf("new connections after B came back: %v, want a third via B", by)
	}

	// Every gateway dead: nothing leaks.
	for _, gw := range []*netlab.NS{c.w.GwA, c.w.GwB, gwC} {
		gw.IP(t, "link", "set", "vpc", "down")
	}
	// Every lane open again and home: the group fails closed through its
	// own dead gateways.
	lanesOn(t, c, "spread", map[string]bool{netlab.GwAVPC: true, netlab.GwBVPC: true, gwCVPC: true})
	time.Sleep(time.Second)
	own := map[string]bool{c.w.NodePublic(0): true, c.w.NodePublic(1): true}
	for i, s := range slices.Concat(flows.Sources(), fresh.Sources(), later.Sources()) {
		for _, a := range s {
			if own[a.String()] {
				t.Errorf("flow %d leaked through a node's own address %s (sources %v)", i, a, s)
			}
		}
	}
}

// TestPlannedFailoverDrains: a group on A, then a new member over B and
// C with drainSeconds: 30, on two nodes and a pod, run by the real
// routers. While the drain lasts every connection from before keeps A
// (no TCP connection breaks, none changes its source address), the nodes
// count them in their states and kubectl staticroute status shows it,
// and every new connection takes B or C; setting drainSeconds to 0 ends
// the drain at once, and the old connections move.
func TestPlannedFailoverDrains(t *testing.T) {
	c := startCluster(t, 2)
	c.w.AddGateway(t, gwCVPC, gwCPublic)
	netlab.StartTCPEcho(t, c.w.Inet, netlab.TCPEchoPort)
	c.cp.MustKubectl(t, checkedRouteYAML("old", "egress", netlab.GwAVPC, netlab.EchoAddr, netlab.EchoAddr), "apply", "-f", "-")
	c.expect(t, all(netlab.GwAPublic))
	from := []*netlab.NS{c.w.Nodes[0], c.w.Nodes[1], c.w.Pod}
	before := netlab.StartFlows(t, 10, from...)
	time.Sleep(500 * time.Millisecond)
	time.Sleep(600 * time.Millisecond) // creationTimestamp has one-second resolution
	next := append(gatewaysRouteYAML("next", []string{netlab.GwBVPC, gwCVPC}, netlab.EchoAddr, netlab.EchoAddr), "  group: egress\n  drainSeconds: 30\n"...)
	c.cp.MustKubectl(t, next, "apply", "-f", "-")
	switched := time.Now()
	// Every node drains, and counts the connections from before.
	err := framework.Eventually(context.Background(), 20*time.Second, func() error {
		for _, n := range c.names {
			g, ok := groupOn(t, c, n, "egress")
			if !ok || g.ActiveMember != "next" || g.Drain == nil || g.Drain.Member != "old" || g.Drain.Connections < 20 {
				return fmt.Errorf("%s reports %+v", n, g)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("every node drains and counts its connections %s after the new member was applied", time.Since(switched).Round(time.Millisecond))
	after := netlab.StartFlows(t, 10, from...)
	time.Sleep(time.Second)
	if by, odd := netlab.BySource(before.Sources()); by[netlab.GwAPublic] != 60 || len(odd) > 0 {
		t.Errorf("during the drain, the 60 connections from before: %v (%v), want all still via A", by, odd)
	}
	broken := 0
	for _, f := range before.TCP {
		if _, _, err := f.State(); err != nil {
			broken++
		}
	}
	if broken > 0 {
		t.Errorf("during the drain, %d of the 30 TCP connections from before broke", broken)
	}
	if by, _ := netlab.BySource(after.Sources()); by[netlab.GwBPublic]+by[gwCPublic] != 60 || by[netlab.GwBPublic] < 25 || by[gwCPublic] < 25 {
		t.Errorf("new connections during the drain: %v, want 60 over B and C", by)
	}
	out, err := exec.Command(framework.Bin(t, "kubectl-staticroute"), "status", "egress", "--kubeconfig", c.cp.Kubeconfig).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "old draining") {
		t.Errorf("kubectl staticroute status egress does not show the drain: %v\n%s", err, out)
	}

	// drainSeconds 0 ends the drain now: what is left moves to B or C.
	c.cp.MustKubectl(t, nil, "patch", "staticroute", "next", "--type", "merge", "-p", `{"spec":{"drainSeconds":0}}`)
	ended := time.Now()
	err = framework.Eventually(context.Background(), 10*time.Second, func() error {
		for i, p := range before.UDP {
			if _, ok := p.FirstAfter(netlab.GwBPublic, ended); !ok {
				if _, ok := p.FirstAfter(gwCPublic, ended); !ok {
					return fmt.Errorf("UDP flow %d from before still via A", i)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	own := map[string]bool{c.w.NodePublic(0): true, c.w.NodePublic(1): true}
	for i, s := range slices.Concat(before.Sources(), after.Sources()) {
		for _, a := range s {
			if own[a.String()] {
				t.Errorf("flow %d leaked through a node's own address %s", i, a)
			}
		}
	}
}
