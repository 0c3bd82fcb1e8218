package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// checkedRouteYAML is a StaticRoute whose gateway every node probes
// through itself, with the defaults (ICMP every 200 ms, 3 in a row).
func checkedRouteYAML(name, group, gw, target string, dests ...string) []byte {
	return append(routeYAML(name, group, gw, dests...), []byte(fmt.Sprintf("  healthCheck: {target: %q}\n", target))...)
}

// switched waits until every prober in which (nil: all) has an answer via
// since, and returns when the last one first did, since since.
func switched(t testing.TB, p *netlab.Probers, which []int, via string, since time.Time) time.Duration {
	t.Helper()
	d, _, err := p.Switched(which, via, since, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func quantiles(ds []time.Duration) (p50, p99, maxd time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99+99)/100-1], s[len(s)-1]
}

// TestAutomaticFailover: each node probes both members' gateways through
// themselves and fails over by itself, in under a second, without the API
// server, never leaking. Three nodes and the pod probe the echo at
// 1,000/s each throughout.
//
// Flap damping is off here: 20 failures a second or two apart are what
// damping holds down (TestHealthChecksKeepTraffic), and this test
// measures each failure's detection and failback.
func TestAutomaticFailover(t *testing.T) {
	c := startCluster(t, 3, "--flap-half-life=0")
	apply := func(yaml []byte) { c.cp.MustKubectl(t, yaml, "apply", "-f", "-") }
	apply(checkedRouteYAML("primary", "", netlab.GwAVPC, netlab.EchoAddr, netlab.EchoAddr))
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	apply(checkedRouteYAML("secondary", "primary", netlab.GwBVPC, netlab.EchoAddr, netlab.EchoAddr))
	// Another group via B whose check probes only the gateway itself: it
	// cannot see a broken NAT.
	apply(append(routeYAML("selfcheck", "", netlab.GwBVPC, "198.19.0.0/16"), []byte("  healthCheck: {}\n")...))
	c.expect(t, all(netlab.GwBPublic))
	gwB, gwA := c.w.GwB, c.w.GwA
	natTable := `table ip nat {
  chain post { type nat hook postrouting priority 100; ip saddr 198.51.100.0/24 oifname "pub" masquerade; }
}`
	// health is how node 0 sees member's gateway in group, from its state.
	health := func(group, member string) string {
		g, _ := groupOn(t, c, c.names[0], group)
		for _, h := range g.Gateways {
			if h.Member == member {
				return h.Health
			}
		}
		return "unreported"
	}
	kinds := []struct {
		name         string
		fail, repair func()
	}{
		{"gateway host gone (its VPC link down)",
			func() { gwB.IP(t, "link", "set", "vpc", "down") }, func() { gwB.IP(t, "link", "set", "vpc", "up") }},
		{"NAT broken, host up (its masquerade deleted)",
			func() { gwB.Exec(t, "nft", "delete", "table", "ip", "nat") }, func() { gwB.NFT(t, natTable) }},
	}
	const reps = 20
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			p := c.w.StartProbers(t, time.Millisecond)
			var over, back []time.Duration
			type window struct{ from, to time.Time }
			var detecting, failingBack []window
			// A failed check must not leave the gateway broken for the
			// cases after it.
			broken := false
			defer func() {
				if broken {
					k.repair()
				}
			}()
			for range reps {
				failed := time.Now()
				k.fail()
				broken = true
				d := switched(t, p, nil, netlab.GwAPublic, failed)
				over = append(over, d)
				if len(over) == 1 {
					// The probe beyond B sees the failure; the probe of B
					// itself sees it only when B's host is gone.
					err := framework.Eventually(context.Background(), 5*time.Second, func() error {
						if h := health("primary", "secondary"); h != v1.GatewayDown {
							return fmt.Errorf("node 0 reports B, probed beyond it, %s", h)
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					self := health("selfcheck", "selfcheck")
					t.Logf("%s: node 0 sees B down probing beyond it, and %s probing B itself", k.name, self)
					if strings.HasPrefix(k.name, "NAT") && self != v1.GatewayUp {
						t.Errorf("with B's NAT broken, the probe of B itself says %s: it should not see it", self)
					}
				}
				// Lost on the way: probes in flight when the gateway died,
				// and those sent until the node switched.
				detecting = append(detecting, window{failed.Add(-10 * time.Millisecond), failed.Add(d)})
				repaired := time.Now()
				k.repair()
				broken = false
				d = switched(t, p, nil, netlab.GwBPublic, repaired)
				back = append(back, d)
				failingBack = append(failingBack, window{repaired, repaired.Add(d + 200*time.Millisecond)})
				time.Sleep(300 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond) // the last answers
			inWindows, onFailback := 0, 0
			for _, w := range detecting {
				inWindows += p.LostBetween(w.from, w.to)
			}
			for _, w := range failingBack {
				onFailback += p.LostBetween(w.from, w.to)
			}
			sent, leaked, lost := p.Result()
			o50, o99, omax := quantiles(over)
			b50, b99, bmax := quantiles(back)
			t.Logf("%d failures: failure → last of 3 nodes and the pod via A p50 %s p99 %s max %s; repair → back via B p50 %s p99 %s max %s; %d probes, %d leaked, %d lost: %d while detecting (%.0f ms per failure and prober), %d on failback, %d elsewhere",
				reps, o50.Round(time.Millisecond), o99.Round(time.Millisecond), omax.Round(time.Millisecond),
				b50.Round(time.Millisecond), b99.Round(time.Millisecond), bmax.Round(time.Millisecond),
				sent, leaked, lost, inWindows, float64(inWindows)/reps/4, onFailback, lost-inWindows-onFailback)
			if leaked != 0 {
				t.Errorf("%d probes leaked", leaked)
			}
			if o99 > time.Second {
				t.Errorf("failover p99 %s, want ≤ 1 s", o99)
			}
			// Lost only while detecting; nothing on failback.
			if onFailback != 0 || lost != inWindows {
				t.Errorf("%d lost on failback and %d outside the detection windows, want 0 and 0", onFailback, lost-inWindows)
			}
		})
	}

	t.Run("gateway dead for one node only: only that node fails over", func(t *testing.T) {
		p := c.w.StartProbers(t, time.Millisecond)
		cut := fmt.Sprintf(`table ip cut { chain forward_cut { type filter hook forward priority 0; ip saddr %s drop; }; }`, c.w.NodeVPC(1))
		failed := time.Now()
		gwB.NFT(t, cut)
		defer gwB.Exec(t, "nft", "delete", "table", "ip", "cut")
		d := switched(t, p, []int{1}, netlab.GwAPublic, failed)
		time.Sleep(2 * time.Second)
		for _, i := range []int{0, 2, 3} { // node 0, node 2, the pod
			if at, ok := p.At(i).FirstAfter(netlab.GwAPublic, failed); ok {
				t.Errorf("prober %d moved to A at %s, though its node still reaches B", i, at.Sub(failed))
			}
		}
		gwB.Exec(t, "nft", "flush", "table", "ip", "cut")
		switched(t, p, []int{1}, netlab.GwBPublic, time.Now())
		_, leaked, _ := p.Result()
		t.Logf("node 1 cut off from B: it alone moved to A in %s; %d leaked", d.Round(time.Millisecond), leaked)
		if leaked != 0 {
			t.Errorf("%d leaked", leaked)
		}
	})

	t.Run("a gateway flapping every 300 ms for 30 s: switches bounded, nothing leaks", func(t *testing.T) {
		p := c.w.StartProbers(t, time.Millisecond)
		defer linksUp(t, gwA, gwB)
		before := autoSwitches(c)
		end := time.Now().Add(30 * time.Second)
		for down := true; time.Now().Before(end); down = !down {
			state := "up"
			if down {
				state = "down"
			}
			gwB.IP(t, "link", "set", "vpc", state)
			time.Sleep(300 * time.Millisecond)
		}
		gwB.IP(t, "link", "set", "vpc", "up")
		time.Sleep(2 * time.Second)
		sent, leaked, lost := p.Result()
		switches := autoSwitches(c) - before
		// Down takes 3 lost in a row and up 3 answered: a node switches at
		// most once per 6 probes (1.2 s), 25 times in 30 s.
		t.Logf("30 s of flapping: %d automatic switches over 3 nodes (bound: 75), %d probes, %d leaked, %d lost", switches, sent, leaked, lost)
		if switches > 3*25 {
			t.Errorf("%d switches, more than the bound", switches)
		}
		if leaked != 0 {
			t.Errorf("%d leaked", leaked)
		}
		c.expect(t, all(netlab.GwBPublic))
	})

	t.Run("the API server unreachable, then the gateway dies: the nodes fail over; their states catch up once it is back", func(t *testing.T) {
		p := c.w.StartProbers(t, time.Millisecond)
		defer linksUp(t, gwA, gwB)
		for _, a := range c.api {
			a.Pause()
			defer a.Resume() // idempotent: a failed check must not leave it away
		}
		time.Sleep(time.Second)
		failed := time.Now()
		gwB.IP(t, "link", "set", "vpc", "down")
		d := switched(t, p, nil, netlab.GwAPublic, failed)
		for _, a := range c.api {
			a.Resume()
		}
		err := framework.Eventually(context.Background(), 20*time.Second, func() error {
			for _, n := range c.names {
				g, ok := groupOn(t, c, n, "primary")
				if !ok || g.ActiveMember != "primary" || g.Selection != "NewerDown" {
					return fmt.Errorf("%s: %+v", n, g)
				}
				gws := g.Gateways
				if len(gws) != 2 || gws[1].Member != "secondary" || gws[1].Health != v1.GatewayDown || gws[0].Health != v1.GatewayUp {
					return fmt.Errorf("%s: gateways %+v", n, gws)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		gwB.IP(t, "link", "set", "vpc", "up")
		switched(t, p, nil, netlab.GwBPublic, time.Now())
		_, leaked, _ := p.Result()
		t.Logf("without the API server: failure → every node via A in %s; %d leaked", d.Round(time.Millisecond), leaked)
		if d > time.Second || leaked != 0 {
			t.Errorf("failover %s (want ≤ 1 s), %d leaked", d, leaked)
		}
	})

	t.Run("both gateways dead: traffic stays on the newest member, lost, never leaked", func(t *testing.T) {
		p := c.w.StartProbers(t, time.Millisecond)
		defer linksUp(t, gwA, gwB)
		gwA.IP(t, "link", "set", "vpc", "down")
		gwB.IP(t, "link", "set", "vpc", "down")
		time.Sleep(3 * time.Second)
		err := framework.Eventually(context.Background(), 10*time.Second, func() error {
			for _, n := range c.names {
				if g, ok := groupOn(t, c, n, "primary"); !ok || g.ActiveMember != "secondary" || g.Selection != "AllDown" {
					return fmt.Errorf("%s: %+v", n, g)
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		gwA.IP(t, "link", "set", "vpc", "up")
		gwB.IP(t, "link", "set", "vpc", "up")
		switched(t, p, nil, netlab.GwBPublic, time.Now())
		sent, leaked, lost := p.Result()
		t.Logf("both dead for 3 s: %d probes, %d lost, %d leaked", sent, lost, leaked)
		if leaked != 0 {
			t.Errorf("%d leaked", leaked)
		}
	})
}

// linksUp brings the gateways' VPC links up (again): what a failed check
// must not leave down.
func linksUp(t *testing.T, gws ...*netlab.NS) {
	for _, gw := range gws {
		gw.IP(t, "link", "set", "vpc", "up")
	}
}

// groupOn is node's report of group.
func groupOn(t *testing.T, c *cluster, node, group string) (v1.NodeGroupState, bool) {
	for _, g := range nodeState(t, c.cp, node).Status.Groups {
		if g.Group == group {
			return g, true
		}
	}
	return v1.NodeGroupState{}, false
}

// autoSwitches counts the routers' automatic switches, from their logs.
func autoSwitches(c *cluster) int {
	n := 0
	for _, p := range c.routers {
		out := p.Output()
		n += strings.Count(out, "failed over automatically") + strings.Count(out, "failed back automatically")
	}
	return n
}
