package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
)

// prefixes returns n /32s in 198.18.0.0/15.
func prefixes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{198, byte(18 + i>>16), byte(i >> 8), byte(i)}).String()
	}
	return out
}

// BenchmarkFailover measures a failover on one node, at 1, 100 and 10,000
// prefixes, by what the new member routes: the same destinations (the
// group's nexthop moves), one destination more (the standby table gets
// one route and is switched in), or all other destinations (the standby
// gets all new routes). ms-to-switch is the time from the start of Apply
// to the switch; ns/op includes bringing the old table up to date after.
func BenchmarkFailover(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		for _, kind := range []string{"same-destinations", "one-more-destination", "all-new-destinations"} {
			b.Run(fmt.Sprintf("prefixes=%d/%s", n, kind), func(b *testing.B) {
				benchFailover(b, n, kind)
			})
		}
	}
}

func benchFailover(b *testing.B, n int, kind string) {
	node := nodeWorld(b)
	k := newKernel(b, node)
	dests := prefixes(2 * n)[:n]
	bDests := dests
	switch kind {
	case "one-more-destination":
		bDests = prefixes(n + 1)
	case "all-new-destinations":
		bDests = prefixes(2 * n)[n:]
	}
	onA := policy.Compute(nodeInput(policytest.Route("primary", "", "198.51.100.4", 0, dests...)))
	onB := policy.Compute(nodeInput(policytest.Route("primary", "", "198.51.100.4", 0, dests...), policytest.Route("secondary", "primary", "198.51.100.12", time.Minute, bDests...)))
	if _, err := k.Apply(onA); err != nil {
		b.Fatal(err)
	}
	var toSwitch time.Duration
	i := 0
	for b.Loop() {
		d := onB
		if i%2 == 1 {
			d = onA
		}
		i++
		a, err := k.Apply(d)
		if err != nil || a.Swapped != (kind != "same-destinations") || a.Moved != 1 {
			b.Fatalf("%+v %v", a, err)
		}
		toSwitch += a.ToSwitch
	}
	b.ReportMetric(float64(toSwitch.Microseconds())/1000/float64(i), "ms-to-switch")
}

// BenchmarkInstall10000 installs 10,000 prefixes on an empty node our way
// (a complete table with a guard behind each route, the rule, then the
// standby copy) and the old tool's way (one netlink route add per prefix
// into main, no guard, no copy), side by side.
func BenchmarkInstall10000(b *testing.B) {
	dests := prefixes(10_000)
	d := policy.Compute(nodeInput(policytest.Route("many", "", "198.51.100.4", 0, dests...)))
	b.Run("ours", func(b *testing.B) {
		node := nodeWorld(b)
		k := newKernel(b, node)
		var toSwitch time.Duration
		for b.Loop() {
			b.StopTimer()
			if err := k.Cleanup(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			a, err := k.Apply(d)
			if err != nil {
				b.Fatal(err)
			}
			toSwitch += a.ToSwitch
		}
		// ns/op adds the standby table's copy, written after the switch.
		b.ReportMetric(float64(toSwitch.Microseconds())/1000/float64(b.N), "ms-to-switch")
	})
	b.Run("route-add-per-prefix", func(b *testing.B) {
		node := nodeWorld(b)
		vpc, err := node.NL.LinkByName("vpc0")
		if err != nil {
			b.Fatal(err)
		}
		routes := make([]netlink.Route, len(dests))
		for i, s := range dests {
			routes[i] = netlink.Route{Dst: &net.IPNet{IP: net.ParseIP(s).To4(), Mask: net.CIDRMask(32, 32)}, Gw: net.ParseIP("198.51.100.4"), LinkIndex: vpc.Attrs().Index}
		}
		for b.Loop() {
			b.StopTimer()
			for i := range routes {
				_ = node.NL.RouteDel(&routes[i])
			}
			b.StartTimer()
			for i := range routes {
				if err := node.NL.RouteAdd(&routes[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkReconcile1000 is one full reconcile of a node with 1,000
// StaticRoutes of 10 destinations each (10,000 prefixes): Compute from the
// objects, then Apply, in the steady state (nothing changed: what every
// resync costs) and after a change of one route.
func BenchmarkReconcile1000(b *testing.B) {
	var routes []*v1.StaticRoute
	all := prefixes(10_000)
	for i := range 1000 {
		routes = append(routes, policytest.Route(fmt.Sprintf("r%04d", i), "", "198.51.100.4", time.Duration(i)*time.Second, all[i*10:i*10+10]...))
	}
	for _, change := range []bool{false, true} {
		name := "steady"
		if change {
			name = "one-route-changed"
		}
		b.Run(name, func(b *testing.B) {
			node := nodeWorld(b)
			k := newKernel(b, node)
			extra := policytest.Route("extra", "", "198.51.100.12", time.Hour, "192.0.2.7")
			if _, err := k.Apply(policy.Compute(nodeInput(routes...))); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				in := routes
				if change && i%2 == 0 {
					in = append(slices.Clone(routes), extra)
				}
				i++
				if _, err := k.Apply(policy.Compute(nodeInput(in...))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
