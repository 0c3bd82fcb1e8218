package policy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/staticroute/staticroute/internal/roottest"
)

var nsCounter atomic.Int64

// testNS is a named network namespace made for one test and deleted at its
// cleanup. Nothing is ever done to the root namespace: links are created
// through a handle bound to the test namespace.
type testNS struct {
	Name string
	NS   netns.NsHandle
	NL   *netlink.Handle
}

func newTestNS(t testing.TB) *testNS {
	t.Helper()
	roottest.Require(t)
	name := fmt.Sprintf("srtest-%d-%d", os.Getpid(), nsCounter.Add(1))

	// NewNamed moves the calling thread into the new namespace: keep the
	// thread locked until it is back in the original one.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, nsErr := netns.NewNamed(name)
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the wrong namespace: never unlock it, so
		// the runtime discards it.
		t.Fatalf("restoring the original namespace: %v", err)
	}
	orig.Close()
	runtime.UnlockOSThread()
	if nsErr != nil {
		t.Fatalf("creating namespace %s: %v", name, nsErr)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		_ = netns.DeleteNamed(name)
		t.Fatal(err)
	}
	n := &testNS{Name: name, NS: ns, NL: h}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	n.must(t, h.LinkSetUp(lo))
	return n
}

func (n *testNS) must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// stub adds an up link with an address: one end of a veth pair whose other
// end (NAME-peer) stays in the namespace too (this kernel has no dummy).
func (n *testNS) stub(t testing.TB, name, cidr string) netlink.Link {
	t.Helper()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "-peer"}
	n.must(t, n.NL.LinkAdd(l))
	peer, err := n.NL.LinkByName(name + "-peer")
	n.must(t, err)
	n.must(t, n.NL.LinkSetUp(peer))
	link, err := n.NL.LinkByName(name)
	n.must(t, err)
	addr, err := netlink.ParseAddr(cidr)
	n.must(t, err)
	n.must(t, n.NL.AddrAdd(link, addr))
	n.must(t, n.NL.LinkSetUp(link))
	return link
}

// ip runs iproute2 against the namespace.
func (n *testNS) ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// exec runs a command inside the namespace.
func (n *testNS) exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// nodeWorld sets up a node: a VPC link vpc0 (198.51.100.10/24) and a public
// link pub0 (203.0.113.10/26) holding the default route.
func nodeWorld(t testing.TB) *testNS {
	n := newTestNS(t)
	n.stub(t, "vpc0", "198.51.100.10/24")
	pub := n.stub(t, "pub0", "203.0.113.10/26")
	n.must(t, n.NL.RouteAdd(&netlink.Route{LinkIndex: pub.Attrs().Index, Gw: net.ParseIP("203.0.113.1")}))
	return n
}

// dump is the namespace's rules and routes (all tables but local), with the
// active steering table's number replaced by ACTIVE and the inactive one's
// by INACTIVE, so that a state prints the same whichever table holds it.
func (n *testNS) dump(t testing.TB, k *Kernel) string {
	t.Helper()
	active, err := k.Active()
	n.must(t, err)
	var lines []string
	lines = append(lines, "# ip rule")
	lines = append(lines, strings.Split(strings.TrimSpace(n.ip(t, "-4", "rule", "show")), "\n")...)
	lines = append(lines, "# ip route show table all (without local)")
	for _, l := range strings.Split(strings.TrimSpace(n.ip(t, "-4", "route", "show", "table", "all")), "\n") {
		if !strings.Contains(l, "table local") && l != "" {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, "\n") + "\n"
	if active != 0 {
		out = strings.ReplaceAll(out, fmt.Sprint(active), "ACTIVE")
		out = strings.ReplaceAll(out, fmt.Sprint(k.other(active)), "INACTIVE")
	}
	return out
}
