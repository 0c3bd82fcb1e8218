package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// gatewayOn is how node sees member's gateway in group, from its state.
func gatewayOn(t *testing.T, c *cluster, node, group, member string) (v1.NodeGatewayHealth, bool) {
	g, _ := groupOn(t, c, node, group)
	for _, h := range g.Gateways {
		if h.Member == member {
			return h, true
		}
	}
	return v1.NodeGatewayHealth{}, false
}

// TestHealthChecksKeepTraffic: the three ways a router used to lose
// traffic that a careful one keeps (issue 22), with the real binaries and
// the routers' default flap damping. Three nodes and the pod probe the
// echo at 1,000/s each.
//
//   - a new member whose gateway is already dead takes nothing over: it is
//     Pending until a probe through it is answered;
//   - routers restarted while the newest member's gateway is dead keep the
//     kernel's choice until their probes decide;
//   - a gateway flapping 1 s down, 1 s up costs one detection window, not
//     one per flap: after its first return it is damped.
func TestHealthChecksKeepTraffic(t *testing.T) {
	c := startCluster(t, 3)
	apply := func(yaml []byte) { c.cp.MustKubectl(t, yaml, "apply", "-f", "-") }
	gwB := c.w.GwB
	defer linksUp(t, c.w.GwA, gwB)
	apply(checkedRouteYAML("primary", "", netlab.GwAVPC, netlab.EchoAddr, netlab.EchoAddr))
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	apply(checkedRouteYAML("secondary", "primary", netlab.GwBVPC, netlab.EchoAddr, netlab.EchoAddr))
	c.expect(t, all(netlab.GwBPublic))

	// slowCheck is a member via B probed once a second: it stays Pending
	// for up to three seconds on a dead gateway, long enough to be seen.
	slowCheck := func(name string) []byte {
		return append(routeYAML(name, "primary", netlab.GwBVPC, netlab.EchoAddr),
			[]byte(fmt.Sprintf("  healthCheck: {target: %q, periodMilliseconds: 1000}\n", netlab.EchoAddr))...)
	}

	// bDies starts the probers, takes B's link down and waits until every
	// node is on A.
	bDies := func(t *testing.T) *netlab.Probers {
		p := c.w.StartProbers(t, time.Millisecond)
		failed := time.Now()
		gwB.IP(t, "link", "set", "vpc", "down")
		switched(t, p, nil, netlab.GwAPublic, failed)
		time.Sleep(500 * time.Millisecond)
		return p
	}

	t.Run("a new member on a dead gateway takes nothing over until it answers", func(t *testing.T) {
		p := bDies(t)
		from := time.Now()
		c.cp.MustKubectl(t, nil, "delete", "staticroute", "secondary")
		apply(slowCheck("secondary-b"))
		// Every node reports the new member Pending, with the reason.
		err := framework.Eventually(context.Background(), 10*time.Second, func() error {
			for _, n := range c.names {
				h, _ := gatewayOn(t, c, n, "primary", "secondary-b")
				if h.Health != v1.GatewayPending || !strings.Contains(h.Message, "no probe answered yet") {
					return fmt.Errorf("%s sees secondary-b's gateway as %q (%q), want Pending", n, h.Health, h.Message)
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		time.Sleep(3 * time.Second) // its probes are lost: it goes Down, still carrying nothing
		until := time.Now()
		if h, _ := gatewayOn(t, c, c.names[0], "primary", "secondary-b"); h.Health != v1.GatewayDown {
			t.Errorf("after three lost probes node 1 sees secondary-b's gateway %s, want Down", h.Health)
		}
		repaired := time.Now()
		gwB.IP(t, "link", "set", "vpc", "up")
		back := switched(t, p, nil, netlab.GwBPublic, repaired)
		sent, leaked, lost := p.Result()
		lostWhileDead := p.LostBetween(from, until) // once the answers had time to come
		t.Logf("secondary-b created on dead gateway B: %d probes lost while B was dead (0 wanted); B back → every node on it in %s; %d probes, %d leaked, %d lost in all",
			lostWhileDead, back.Round(time.Millisecond), sent, leaked, lost)
		if lostWhileDead != 0 || leaked != 0 {
			t.Errorf("%d lost after the new member on a dead gateway, %d leaked: want 0 and 0", lostWhileDead, leaked)
		}

		// A new member on a gateway that answers takes over within its
		// first probe's round trip.
		p = c.w.StartProbers(t, time.Millisecond)
		applied := time.Now()
		apply(checkedRouteYAML("tertiary", "primary", netlab.GwAVPC, netlab.EchoAddr, netlab.EchoAddr))
		took := switched(t, p, nil, netlab.GwAPublic, applied)
		_, leaked, lost = p.Result()
		t.Logf("a new member on a live gateway: kubectl apply → every node on it in %s; %d leaked, %d lost", took.Round(time.Millisecond), leaked, lost)
		if took > time.Second || leaked != 0 || lost != 0 {
			t.Errorf("a healthy new member took %s to carry the group (want ≤ 1 s), %d leaked, %d lost", took, leaked, lost)
		}
		c.cp.MustKubectl(t, nil, "delete", "staticroute", "tertiary")
		c.expect(t, all(netlab.GwBPublic))
	})

	top := t // the restarted routers live as long as the cluster
	t.Run("routers restarted while the newest member's gateway is dead lose nothing", func(t *testing.T) {
		p := bDies(t)
		before := c.w.Nodes[0].IP(t, "nexthop", "show", "protocol", "146")
		from := time.Now()
		for i := range c.routers {
			c.rs.Restart(top, i)
		}
		time.Sleep(4 * time.Second) // three lost probes of B at one a second, and more
		until := time.Now()
		if after := c.w.Nodes[0].IP(t, "nexthop", "show", "protocol", "146"); after != before {
			t.Errorf("the restarted router moved the group:\n%s\nwas\n%s", after, before)
		}
		repaired := time.Now()
		gwB.IP(t, "link", "set", "vpc", "up")
		back := switched(t, p, nil, netlab.GwBPublic, repaired)
		sent, leaked, lost := p.Result()
		lostAfter := p.LostBetween(from, until)
		t.Logf("3 routers restarted with B dead: %d probes lost after the restarts (0 wanted); B back → every node on it in %s; %d probes, %d leaked, %d lost in all",
			lostAfter, back.Round(time.Millisecond), sent, leaked, lost)
		if lostAfter != 0 || leaked != 0 {
			t.Errorf("%d lost after the restarts, %d leaked: want 0 and 0", lostAfter, leaked)
		}
	})

	t.Run("a gateway flapping 1 s down, 1 s up: one detection, then damped", func(t *testing.T) {
		// A member via B with the default check (every 200 ms, 3 in a
		// row), as in the field report.
		apply(checkedRouteYAML("secondary-c", "primary", netlab.GwBVPC, netlab.EchoAddr, netlab.EchoAddr))
		c.cp.MustKubectl(t, nil, "delete", "staticroute", "secondary-b")
		c.expect(t, all(netlab.GwBPublic))
		time.Sleep(time.Second)
		p := c.w.StartProbers(t, time.Millisecond)
		start := time.Now()
		time.Sleep(1700 * time.Millisecond)
		var first, third time.Time
		for i := range 6 {
			switch i {
			case 0:
				first = time.Now()
			case 2:
				third = time.Now()
			}
			gwB.IP(t, "link", "set", "vpc", "down")
			time.Sleep(time.Second)
			gwB.IP(t, "link", "set", "vpc", "up")
			time.Sleep(time.Second)
		}
		time.Sleep(2300 * time.Millisecond) // 16 s in all, as in the report
		end := time.Now()
		after := p.SourceChanges(third, end)
		all := p.SourceChanges(start, end)
		// The node states say B is damped, and until when.
		h, _ := gatewayOn(t, c, c.names[0], "primary", "secondary-c")
		status, err := exec.Command(framework.Bin(t, "kubectl-staticroute"), "status", "primary", "--kubeconfig", c.cp.Kubeconfig).CombinedOutput()
		sent, leaked, lost := p.Result()
		// The first flap is a failure like any other: its probes are lost
		// until the nodes detect it (3 probes of 200 ms, 0.6–0.8 s). After
		// it, B is damped and nothing more may be lost.
		var firstWindow []int
		for i := range len(c.w.Nodes) + 1 {
			firstWindow = append(firstWindow, p.At(i).LostBetween(first.Add(-10*time.Millisecond), first.Add(time.Second)))
		}
		inFirst := 0
		for _, n := range firstWindow {
			inFirst += n
		}
		share := float64(lost) / float64(sent)
		t.Logf("6 flaps of 1 s down, 1 s up over %s: source changes per prober %v (%v after the first two flaps); %d probes, %d leaked, %d lost (%.1f%%; target ≤ 5%%): %v per prober while the first flap was detected, %d after it; node 1 sees B %s until %v\n%s",
			end.Sub(start).Round(time.Millisecond), all, after, sent, leaked, lost, 100*share, firstWindow, lost-inFirst, h.Health, h.DampedUntil, status)
		for i, n := range after {
			if n > 2 {
				t.Errorf("prober %d changed source %d times after the first two flaps, want at most 2", i, n)
			}
		}
		for i, n := range firstWindow {
			// One detection: at most three probe periods, the probe
			// in flight and the switch: 0.9 s of probes at 1,000/s.
			if n > 900 {
				t.Errorf("prober %d lost %d probes while the first flap was detected, more than one detection window (900)", i, n)
			}
		}
		if lost != inFirst || leaked != 0 {
			t.Errorf("%d lost after the first flap's detection (want 0: B is damped), %d leaked (want 0)", lost-inFirst, leaked)
		}
		if h.Health != v1.GatewayDamped || h.DampedUntil == nil || !h.DampedUntil.After(time.Now()) {
			t.Errorf("node 1 reports B %s until %v, want Damped until a time to come", h.Health, h.DampedUntil)
		}
		if err != nil || !strings.Contains(string(status), "Damped until") {
			t.Errorf("kubectl staticroute status does not show B damped (%v):\n%s", err, status)
		}
	})
}
