package datapath

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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

var update = flag.Bool("update", false, "rewrite golden files")

// nodeInput is the test node as nodeWorld builds it.
func nodeInput(routes ...*v1.StaticRoute) policy.Input {
	in := policytest.Input(routes...)
	in.Node.Connected = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/26")}
	return in
}

// states are the desired states the transition tests move between.
func states() map[string]policy.Desired {
	primary := policytest.Route("primary", "", "198.51.100.4", 0, "192.0.2.7", "198.19.0.0/16")
	secondary := policytest.Route("secondary", "primary", "198.51.100.12", time.Minute, "192.0.2.7", "198.19.0.0/16")
	everything := policytest.Route("everything", "", "198.51.100.4", 0, "0.0.0.0/0")
	far := policytest.Route("far", "", "198.51.100.200", 0, "192.0.2.99")
	farIn := nodeInput(far)
	farIn.Node.OnLink = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25")}
	// The primary's destinations in another group, and behind a gateway
	// that is not on-link: the same prefixes as other routes, which must
	// replace them in place.
	moved := policytest.Route("moved", "", "198.51.100.12", 0, "192.0.2.7", "198.19.0.0/16")
	offLinkIn := nodeInput(policytest.Route("primary", "", "198.51.100.200", 0, "192.0.2.7", "198.19.0.0/16"))
	offLinkIn.Node.OnLink = farIn.Node.OnLink
	return map[string]policy.Desired{
		"empty":            policy.Compute(nodeInput()),
		"moved":            policy.Compute(nodeInput(moved)),
		"primary-off-link": policy.Compute(offLinkIn),
		"primary":          policy.Compute(nodeInput(primary)),
		"failover":         policy.Compute(nodeInput(primary, secondary)),
		"everything":       policy.Compute(nodeInput(everything)),
		"gateway-off-link": policy.Compute(farIn),
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "states", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("state %s: kernel dump differs from %s\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func newKernel(t testing.TB, n *netlab.NS) *Kernel {
	t.Helper()
	k, err := NewKernel(n.NS, policy.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

// Each state, applied to a fresh node, gives its golden dump.
func TestKernelStates(t *testing.T) {
	for name, d := range states() {
		t.Run(name, func(t *testing.T) {
			n := nodeWorld(t)
			k := newKernel(t, n)
			if _, err := k.Apply(d); err != nil {
				t.Fatal(err)
			}
			golden(t, name, dump(t, n, k))
		})
	}
}

// Any sequence of states, in random order, ends each step in exactly that
// state's dump: nothing of an earlier state lingers, whichever table holds
// it.
func TestKernelTransitionsInRandomOrder(t *testing.T) {
	all := states()
	var names []string
	for name := range all {
		names = append(names, name)
	}
	n := nodeWorld(t)
	k := newKernel(t, n)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	seq := make([]string, 40)
	for i := range seq {
		seq[i] = names[rng.IntN(len(names))]
	}
	t.Logf("sequence: %v", seq)
	for i, name := range seq {
		if _, err := k.Apply(all[name]); err != nil {
			t.Fatalf("step %d (%s): %v", i, name, err)
		}
		golden(t, name, dump(t, n, k))
	}
}

func TestKernelApplyIsIdempotentAndSwapsOnlyOnChange(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	s := states()
	first, err := k.Apply(s["primary"])
	if err != nil || !first.Swapped {
		t.Fatalf("first apply: %+v %v", first, err)
	}
	again, err := k.Apply(s["primary"])
	if err != nil || again.Swapped || again.Table != first.Table {
		t.Fatalf("applying the same state again: %+v %v (first %+v)", again, err, first)
	}
	// Same destinations, new gateway: the group's nexthop moves, the
	// table stays.
	next, err := k.Apply(s["failover"])
	if err != nil || next.Swapped || next.Moved != 1 || next.Table != first.Table {
		t.Fatalf("failover: %+v %v", next, err)
	}
	golden(t, "failover", dump(t, n, k))
	// Other destinations: a new table is switched in.
	swapped, err := k.Apply(s["everything"])
	if err != nil || !swapped.Swapped || swapped.Table == first.Table {
		t.Fatalf("new destinations: %+v %v", swapped, err)
	}
}

// After a crash between adding the new rule and deleting the old one, the
// first rule listed is active and the next apply finishes the job.
func TestKernelAdoptsAHalfDoneSwap(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	s := states()
	a, err := k.Apply(s["primary"])
	if err != nil {
		t.Fatal(err)
	}
	// What a router killed mid-swap leaves: the failover state written
	// into the other table and its rule added, the old rule still there.
	want, nhs, err := k.wantedIn(s["failover"])
	if err != nil {
		t.Fatal(err)
	}
	other := k.other(a.Table)
	n.Must(t, k.batch.replaceNexthops(nhs, k.Opts.Protocol))
	n.Must(t, k.batch.routes(unix.RTM_NEWROUTE, other, want))
	if err := n.NL.RuleAdd(k.rule(other).netlinkRule()); err != nil {
		t.Fatal(err)
	}
	if act, _ := k.Active(); act != a.Table {
		t.Fatalf("active = %d, want the first rule's table %d", act, a.Table)
	}
	if _, err := k.Apply(s["failover"]); err != nil {
		t.Fatal(err)
	}
	golden(t, "failover", dump(t, n, k))
}

// Drift: a deleted rule or a flushed table is put back by the next apply.
func TestKernelRepairsDrift(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	d := states()["primary"]
	if _, err := k.Apply(d); err != nil {
		t.Fatal(err)
	}
	n.IP(t, "rule", "del", "priority", "30010")
	if _, err := k.Apply(d); err != nil {
		t.Fatal(err)
	}
	golden(t, "primary", dump(t, n, k))
	// Someone flushes our table (iproute2's flush cannot delete nexthop
	// routes: delete them as the kernel wants, by table and destination).
	act, _ := k.Active()
	if err := k.flush(act); err != nil {
		t.Fatal(err)
	}
	if out := n.IP(t, "route", "show", "table", itoa(act)); out != "" {
		t.Fatalf("table not flushed: %s", out)
	}
	k.Invalidate() // what the router does on the route events of the flush
	if _, err := k.Apply(d); err != nil {
		t.Fatal(err)
	}
	golden(t, "primary", dump(t, n, k))
	// Without the event, the periodic full check finds it.
	act, _ = k.Active()
	if err := k.flush(act); err != nil {
		t.Fatal(err)
	}
	k.FullCheck = 0
	if _, err := k.Apply(d); err != nil {
		t.Fatal(err)
	}
	golden(t, "primary", dump(t, n, k))
	n.IP(t, "rule", "del", "priority", "30000")
	if r, err := k.Apply(d); err != nil || r.Swapped {
		t.Fatalf("re-adding only the mark rule: %+v %v", r, err)
	}
	golden(t, "primary", dump(t, n, k))
}

// Cleanup removes every rule and route of ours and nothing else.
func TestKernelCleanupRemovesOnlyOurs(t *testing.T) {
	n := nodeWorld(t)
	before := dump(t, n, newKernel(t, n))
	// Someone else's rule and routes, in the main table and a table of
	// their own, must survive.
	n.IP(t, "rule", "add", "priority", "30005", "lookup", "100")
	n.IP(t, "route", "add", "192.0.2.128/25", "via", "198.51.100.1", "table", "100")
	n.IP(t, "route", "add", "198.18.0.0/24", "via", "198.51.100.1", "proto", "static")
	theirs := dump(t, n, newKernel(t, n))
	k := newKernel(t, n)
	if _, err := k.Apply(states()["everything"]); err != nil {
		t.Fatal(err)
	}
	if err := k.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, n, k); got != theirs {
		t.Fatalf("after cleanup:\n%s\nwant what was there before:\n%s", got, theirs)
	}
	if before == theirs {
		t.Fatal("the foreign rule and routes were not added")
	}
	if err := k.Cleanup(); err != nil {
		t.Fatalf("cleanup twice: %v", err)
	}
}

func TestKernelRoutesCarryOurProtocol(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	a, err := k.Apply(states()["everything"])
	if err != nil {
		t.Fatal(err)
	}
	rs, err := n.NL.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: a.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		t.Fatal("no routes")
	}
	for _, r := range rs {
		if int(r.Protocol) != k.Opts.Protocol {
			t.Errorf("%s has protocol %d, want %d", r, r.Protocol, k.Opts.Protocol)
		}
	}
	if !strings.Contains(n.IP(t, "route", "show", "table", itoa(a.Table)), "proto 146") {
		t.Error("ip route does not show proto 146")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestKernelReadNode(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	for _, h := range []VPCHint{
		{Link: "vpc0"},
		{CIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		// The layout sets no VPC: the node's address finds it.
		{NodeIP: netip.MustParseAddr("198.51.100.10")},
	} {
		got, err := k.ReadNode(h)
		if err != nil {
			t.Fatal(err)
		}
		if got.VPCLink != "vpc0" || got.VPCAddr.String() != "198.51.100.10" || got.VPCPrefix.String() != "198.51.100.0/24" ||
			fmt.Sprint(got.OnLink) != "[198.51.100.0/24]" || fmt.Sprint(got.Connected) != "[198.51.100.0/24 203.0.113.0/26]" {
			t.Errorf("ReadNode(%+v) = %+v", h, got)
		}
	}
	for _, c := range []struct {
		h    VPCHint
		want string
	}{
		{VPCHint{CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "--vpc-link"},
		{VPCHint{NodeIP: netip.MustParseAddr("192.0.2.7")}, "no link holds the node's address 192.0.2.7: set vpcCIDRs in the ConfigMap staticroute-layout"},
		{VPCHint{}, "give $NODE_IP"},
	} {
		if _, err := k.ReadNode(c.h); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadNode(%+v): err = %v, want %q", c.h, err, c.want)
		}
	}
}

// A route event that arrives while an Apply runs (someone flushed the
// table it just switched to) must not be forgotten when that Apply ends:
// the next Apply finds the damage and repairs it, without waiting for
// FullCheck.
func TestInvalidateDuringApplyIsKept(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	st := states()
	if _, err := k.Apply(st["primary"]); err != nil {
		t.Fatal(err)
	}
	k.afterSwitch = func() {
		active, err := k.Active()
		n.Must(t, err)
		n.Must(t, k.flush(active)) // as `ip route flush table` would
		if left := n.IP(t, "route", "show", "table", fmt.Sprint(active)); left != "" {
			t.Fatalf("the flush left:\n%s", left)
		}
		k.Invalidate() // what the route event does
	}
	if _, err := k.Apply(st["everything"]); err != nil {
		t.Fatal(err)
	}
	k.afterSwitch = nil
	if _, err := k.Apply(st["everything"]); err != nil {
		t.Fatal(err)
	}
	golden(t, "everything", dump(t, n, k))
}

// netlinkRule is r as vishvananda/netlink has it, for a test that changes
// the kernel as another program would.
func (r ruleSpec) netlinkRule() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family, nr.Priority, nr.Table, nr.Mark, nr.Mask = unix.AF_INET, r.priority, r.table, r.mark, r.mask
	return nr
}
