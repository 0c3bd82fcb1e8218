package datapath

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
	"github.com/staticroute/staticroute/test/netlab"
)

// worldInput is what the router in the world's node would compute from.
func worldInput(routes ...*v1.StaticRoute) policy.Input {
	in := policytest.Input(routes...)
	in.Node.VPCAddr = netip.MustParseAddr(netlab.PlanFor(1).NodeVPC(0))
	in.Node.Connected = []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/26"), netip.MustParsePrefix("198.18.64.0/24"),
	}
	return in
}

var (
	primaryRoute   = policytest.Route("primary", "", "198.51.100.4", 0, netlab.EchoAddr)
	secondaryRoute = policytest.Route("secondary", "primary", "198.51.100.12", time.Minute, netlab.EchoAddr)
)

func TestWorldNodeAndPodLeaveViaTheActiveGateway(t *testing.T) {
	w := netlab.NewWorld(t)
	k := newKernel(t, w.Node)
	// Without a route the echo sees the node's own public address: the
	// prober can see a leak.
	for name, ns := range map[string]*netlab.NS{"node": w.Node, "pod": w.Pod} {
		if got := netlab.Answers(t, ns); got != netlab.NodePublic {
			t.Fatalf("%s before any route: echo saw %s, want the node's own %s", name, got, netlab.NodePublic)
		}
	}
	steps := []struct {
		name string
		d    policy.Desired
		want string
	}{
		{"primary", policy.Compute(worldInput(primaryRoute)), netlab.GwAPublic},
		{"failover to secondary", policy.Compute(worldInput(primaryRoute, secondaryRoute)), netlab.GwBPublic},
		{"failback by deleting secondary", policy.Compute(worldInput(primaryRoute)), netlab.GwAPublic},
	}
	for _, s := range steps {
		if _, err := k.Apply(s.d); err != nil {
			t.Fatal(err)
		}
		for name, ns := range map[string]*netlab.NS{"node": w.Node, "pod": w.Pod} {
			if got := netlab.Answers(t, ns); got != s.want {
				t.Errorf("%s: %s reached the echo as %s, want %s", s.name, name, got, s.want)
			}
		}
		// What a restarted router reads back: the gateway each group
		// takes now.
		carried, _, err := k.Carried([]string{"primary", "other"})
		if err != nil {
			t.Fatal(err)
		}
		if gw := s.d.Groups[0].Gateway; len(carried) != 1 || carried["primary"] != gw {
			t.Errorf("%s: the kernel carries %v, want primary via %s", s.name, carried, gw)
		}
	}
	// Everything via gateway A: the VPC, the public side, the pod and the
	// API server stay direct.
	if _, err := k.Apply(policy.Compute(worldInput(policytest.Route("everything", "", "198.51.100.4", 0, "0.0.0.0/0")))); err != nil {
		t.Fatal(err)
	}
	if got := netlab.Answers(t, w.Node); got != netlab.GwAPublic {
		t.Errorf("0.0.0.0/0 via A: echo saw %s, want %s", got, netlab.GwAPublic)
	}
	for dst, dev := range map[string]string{"198.51.100.12": "dev vpc0", "203.0.113.1": "dev pub0", "198.18.64.2": "dev lxc0", "203.0.113.5": "dev pub0"} {
		got := w.Node.IP(t, "route", "get", dst)
		if !strings.Contains(got, dst+" "+dev) {
			t.Errorf("with 0.0.0.0/0 steered, %s goes %q, want %q", dst, strings.TrimSpace(got), dev)
		}
	}
}

func TestWorldUnreachableFailsClosed(t *testing.T) {
	w := netlab.NewWorld(t)
	in := worldInput(policytest.Route("far", "", "198.51.100.200", 0, netlab.EchoAddr))
	in.Node.OnLink = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25")}
	if _, err := newKernel(t, w.Node).Apply(policy.Compute(in)); err != nil {
		t.Fatal(err)
	}
	p := netlab.StartProber(t, w.Node, time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	sent, by, _ := p.Result(200 * time.Millisecond)
	if len(by) != 0 || sent == 0 {
		t.Fatalf("sent %d probes, answers by source %v: want none to get out", sent, by)
	}
}

// applyFunc is one way of moving the node to a desired state.
type applyFunc func(t *testing.T, k *Kernel, d policy.Desired)

func ours(t *testing.T, k *Kernel, d policy.Desired) {
	if _, err := k.Apply(d); err != nil {
		t.Error(err)
	}
}

// deleteThenAdd is a deliberately broken applier: it takes the old table
// away before the new one is in place. Writing the new table takes about
// a millisecond per 100 routes here; the pause stands for that.
func deleteThenAdd(t *testing.T, k *Kernel, d policy.Desired) {
	if act, _ := k.Active(); act != 0 {
		_ = k.batch.rules(unix.RTM_DELRULE, k.rule(act))
		_ = k.flush(act)
	}
	time.Sleep(time.Millisecond)
	want, nhs, err := k.wantedIn(d)
	if err != nil {
		t.Error(err)
		return
	}
	if err := k.batch.replaceNexthops(nhs, k.Opts.Protocol); err != nil {
		t.Error(err)
	}
	_ = k.batch.routes(unix.RTM_NEWROUTE, k.Opts.Tables[0], want)
	_ = k.batch.rules(unix.RTM_NEWRULE, k.rule(k.Opts.Tables[0]))
}

// oldTool is the old operator's failover: routes in the main table, the
// primary's deleted, a wait (30-60 s in its tutorial; 20 ms here), the
// secondary's added.
func oldTool(t *testing.T, k *Kernel, d policy.Desired) {
	vpc, err := k.NL.LinkByName("vpc0")
	if err != nil {
		t.Error(err)
		return
	}
	dst := &net.IPNet{IP: net.ParseIP(netlab.EchoAddr).To4(), Mask: net.CIDRMask(32, 32)}
	_ = k.NL.RouteDel(&netlink.Route{Dst: dst})
	time.Sleep(20 * time.Millisecond)
	for _, r := range d.Routes {
		if r.Kind == policy.Via && r.Prefix.Addr().String() == netlab.EchoAddr {
			if err := k.NL.RouteAdd(&netlink.Route{Dst: dst, Gw: net.IP(r.Gateway.AsSlice()), LinkIndex: vpc.Attrs().Index}); err != nil {
				t.Error(err)
			}
		}
	}
}

// failovers moves back and forth between gateways A and B while a node
// and a pod probe every half millisecond, and counts what leaked (seen as
// the node's own address) and what was lost.
func failovers(t *testing.T, apply applyFunc, n int) (sent, leaked, lost int) {
	return failoversBetween(t, apply, n, policy.Compute(worldInput(primaryRoute)), policy.Compute(worldInput(primaryRoute, secondaryRoute)))
}

func failoversBetween(t *testing.T, apply applyFunc, n int, onA, onB policy.Desired) (sent, leaked, lost int) {
	w := netlab.NewWorld(t)
	k := newKernel(t, w.Node)
	apply(t, k, onA)
	if got := netlab.Answers(t, w.Node); got != netlab.GwAPublic {
		t.Fatalf("before the failovers the echo saw %s, want %s", got, netlab.GwAPublic)
	}
	probes := []*netlab.Prober{netlab.StartProber(t, w.Node, 500*time.Microsecond), netlab.StartProber(t, w.Pod, 500*time.Microsecond)}
	time.Sleep(50 * time.Millisecond)
	for i := range n {
		if i%2 == 0 {
			apply(t, k, onB)
		} else {
			apply(t, k, onA)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	for i, p := range probes {
		s, by, l := p.Result(500 * time.Millisecond)
		t.Logf("prober %d: sent %d, answers by source %v, lost %d", i, s, by, l)
		sent += s
		leaked += by[netlab.NodePublic]
		lost += l
		for src, c := range by {
			if src != netlab.NodePublic && src != netlab.GwAPublic && src != netlab.GwBPublic {
				t.Errorf("%d answers from unexpected source %s", c, src)
			}
		}
	}
	return sent, leaked, lost
}

func TestFailoverUnderTrafficLeaksAndLosesNothing(t *testing.T) {
	// Gateway A's member routes one more prefix than B's: every failover
	// switches a whole new table in.
	wider := policytest.Route("primary", "", "198.51.100.4", 0, netlab.EchoAddr, "198.19.0.0/16")
	tests := map[string][2]policy.Desired{
		"same destinations: the group's nexthop moves":   {policy.Compute(worldInput(primaryRoute)), policy.Compute(worldInput(primaryRoute, secondaryRoute))},
		"other destinations: a new table is switched in": {policy.Compute(worldInput(wider)), policy.Compute(worldInput(wider, secondaryRoute))},
	}
	for name, states := range tests {
		t.Run(name, func(t *testing.T) {
			sent, leaked, lost := failoversBetween(t, ours, 100, states[0], states[1])
			t.Logf("100 failovers: %d probes, %d leaked, %d lost", sent, leaked, lost)
			if sent < 1000 || leaked != 0 || lost != 0 {
				t.Fatalf("%d probes: %d leaked via the node's own address, %d lost; want 0 and 0", sent, leaked, lost)
			}
		})
	}
}

// The same probers must see the leaks of a broken applier and of the old
// tool's flow: a prober that cannot see a leak proves nothing.
func TestFailoverProbersSeeLeaks(t *testing.T) {
	for name, apply := range map[string]applyFunc{"delete then add": deleteThenAdd, "the old tool's delete, wait, apply": oldTool} {
		t.Run(name, func(t *testing.T) {
			sent, leaked, lost := failovers(t, apply, 100)
			t.Logf("%s: %d probes, %d leaked, %d lost", name, sent, leaked, lost)
			// A pod's leaked probe dies in strict rp_filter on its way
			// back: it counts as lost.
			if leaked+lost == 0 {
				t.Fatalf("the probers saw no leak or loss from %s", name)
			}
		})
	}
}

// With the VPC link down the kernel deletes the steered routes with it;
// before any router reacts, the prefix must fail closed, not fall through
// to main and leave with the node's public address.
func TestVPCLinkDownFailsClosedBeforeTheRouterReacts(t *testing.T) {
	w := netlab.NewWorld(t)
	k := newKernel(t, w.Node)
	if _, err := k.Apply(policy.Compute(worldInput(primaryRoute))); err != nil {
		t.Fatal(err)
	}
	if got := netlab.Answers(t, w.Node); got != netlab.GwAPublic {
		t.Fatalf("echo saw %s", got)
	}
	w.Node.IP(t, "link", "set", "vpc0", "down")
	p := netlab.StartProber(t, w.Node, time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	sent, by, _ := p.Result(200 * time.Millisecond)
	if len(by) != 0 || sent == 0 {
		t.Fatalf("link down: sent %d, answers by source %v: want none", sent, by)
	}
	out, err := exec.Command("ip", "-n", w.Node.Name, "route", "get", netlab.EchoAddr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No route to host") {
		t.Fatalf("route get %s: %v %s", netlab.EchoAddr, err, out)
	}
}
