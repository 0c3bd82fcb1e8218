package datapath

import (
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
	"github.com/staticroute/staticroute/test/netlab"
)

// newDatapath is the whole datapath of a node's namespace, as the router
// builds it.
func newDatapath(tb testing.TB, n *netlab.NS) *Datapath {
	k, f := newKernel(tb, n), newFirewall(tb, n)
	return &Datapath{Routes: k, Firewall: f, Marks: &ValidMarks{Kernel: k, Firewall: f}}
}

// BenchmarkGatewayDeath is a gateway's death at 10,000 prefixes, once its
// health check has seen it, side by side: a group over one gateway at a
// time (the death moves the group to its older member: its nexthop moves
// in place) and a group over three at once (B's lane moves to C).
// Deaths and returns take turns: ms-to-switch is, for the deaths, the
// time from the start of the apply to the switch; ms-to-return the same
// for the returns (for lanes, it includes moving the connections that
// left to the lane they went to); ns/op is the whole datapath's apply,
// the firewall's table with the lanes' sets of 10,000 prefixes included.
func BenchmarkGatewayDeath(b *testing.B) {
	dests := prefixes(10_000)
	for _, c := range []struct {
		name       string
		routes     []*v1.StaticRoute
		up, killed string
	}{
		{"prefixes=10000/one-gateway", []*v1.StaticRoute{
			policytest.WithCheck(policytest.Route("primary", "", "198.51.100.4", 0, dests...), ""),
			policytest.WithCheck(policytest.Route("secondary", "primary", "198.51.100.12", time.Minute, dests...), ""),
		}, "UU", "UD"},
		{"prefixes=10000/three-gateways", []*v1.StaticRoute{
			policytest.WithCheck(policytest.Gateways("spread", "", []string{"198.51.100.4", "198.51.100.12", "198.51.100.20"}, 0, dests...), ""),
		}, "UUU", "UDU"},
	} {
		b.Run(c.name, func(b *testing.B) {
			dp := newDatapath(b, nodeWorld(b))
			up, killed := policy.Compute(policytest.WithHealth(nodeInput(c.routes...), c.up)), policy.Compute(policytest.WithHealth(nodeInput(c.routes...), c.killed))
			if _, err := dp.Apply(up); err != nil {
				b.Fatal(err)
			}
			var took [2]time.Duration
			i := 0
			for b.Loop() {
				d := killed
				if i%2 == 1 {
					d = up
				}
				a, err := dp.Apply(d)
				if err != nil || a.Moved != 1 {
					b.Fatalf("%+v %v", a, err)
				}
				took[i%2] += a.ToSwitch
				i++
			}
			deaths, returns := (i+1)/2, max(i/2, 1)
			b.ReportMetric(float64(took[0].Microseconds())/1000/float64(deaths), "ms-to-switch")
			b.ReportMetric(float64(took[1].Microseconds())/1000/float64(returns), "ms-to-return")
		})
	}
}
