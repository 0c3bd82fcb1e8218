// Package netlab builds test networks out of network namespaces: hosts,
// links, bridges, and the tutorial's world of nodes, NAT gateways and an
// echo on the "internet". Every namespace is made for one test and deleted
// at its cleanup; nothing is ever done to the root namespace.
package netlab

import (
	"sync"

	"github.com/staticroute/staticroute/test/tb"

	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/staticroute/staticroute/internal/roottest"
)

var nsCounter atomic.Int64

// NS is a named network namespace made for one test and deleted at its
// cleanup. Nothing is ever done to the root namespace: links are created
// through a handle bound to the test namespace.
type NS struct {
	Name string
	NS   netns.NsHandle
	NL   *netlink.Handle
}

// New makes a namespace with loopback up.
func New(t tb.T) *NS {
	t.Helper()
	if sk, ok := t.(roottest.T); ok {
		roottest.Require(sk)
	} else if os.Geteuid() != 0 {
		t.Fatal("network namespaces need root")
	}
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
	n := &NS{Name: name, NS: ns, NL: h}
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
	n.Must(t, h.LinkSetUp(lo))
	return n
}

func (n *NS) Must(t tb.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Stub adds an up link with an address: one end of a veth pair whose other
// end (NAME-peer) stays in the namespace too (this kernel has no dummy).
func (n *NS) Stub(t tb.T, name, cidr string) netlink.Link {
	t.Helper()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "-peer"}
	n.Must(t, n.NL.LinkAdd(l))
	peer, err := n.NL.LinkByName(name + "-peer")
	n.Must(t, err)
	n.Must(t, n.NL.LinkSetUp(peer))
	link, err := n.NL.LinkByName(name)
	n.Must(t, err)
	addr, err := netlink.ParseAddr(cidr)
	n.Must(t, err)
	n.Must(t, n.NL.AddrAdd(link, addr))
	n.Must(t, n.NL.LinkSetUp(link))
	return link
}

// IP runs iproute2 against the namespace.
func (n *NS) IP(t tb.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Exec runs a command inside the namespace.
func (n *NS) Exec(t tb.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Sysctl sets keys to values, given as key, value, key, value…, in one
// command.
func (n *NS) Sysctl(t tb.T, kv ...string) {
	t.Helper()
	args := []string{"sysctl", "-q", "-w"}
	for i := 0; i+1 < len(kv); i += 2 {
		args = append(args, kv[i]+"="+kv[i+1])
	}
	n.Exec(t, args...)
}

func (n *NS) NFT(t tb.T, ruleset string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", n.Name, err, out)
	}
}

// InNS runs f on a thread inside ns, so that sockets f opens belong to ns;
// the thread returns to its namespace before it is unlocked.
func InNS(t tb.T, n *NS, f func() error) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(n.NS); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		t.Fatalf("restoring the namespace: %v", err) // thread stays locked: discarded
	}
	runtime.UnlockOSThread()
	if ferr != nil {
		t.Fatal(ferr)
	}
}

// Forwarder relays connections from inside a namespace to a target.
type Forwarder struct {
	t              tb.T
	n              *NS
	dialIn         *NS // nil: the target is dialled from the root namespace
	listen, target string

	mu       sync.Mutex
	listener net.Listener // nil while paused
	conns    map[net.Conn]bool
}

// Pause cuts every relayed connection and stops listening, so that new
// ones are refused, as when the target's process is down.
func (f *Forwarder) Pause() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listener != nil {
		f.listener.Close()
		f.listener = nil
	}
	for c := range f.conns {
		c.Close()
	}
	f.conns = map[net.Conn]bool{}
}

// Resume listens and relays again.
func (f *Forwarder) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listener == nil {
		f.start()
	}
}

func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listener == nil {
		return false
	}
	f.conns[c] = true
	return true
}

// ForwardInto relays connections to listen, in the root namespace, to
// target inside n: the way into a process that runs in n.
func ForwardInto(t tb.T, n *NS, listen, target string) *Forwarder {
	t.Helper()
	return startForwarder(t, &Forwarder{t: t, dialIn: n, listen: listen, target: target, conns: map[net.Conn]bool{}})
}

// Forward listens on listen inside n (nil: the test's own namespace) and
// relays every connection to target, dialled from the test's own
// namespace: a process inside n can then reach a server on the root
// namespace's loopback (an API server) without a link between them.
func Forward(t tb.T, n *NS, listen, target string) *Forwarder {
	t.Helper()
	return startForwarder(t, &Forwarder{t: t, n: n, listen: listen, target: target, conns: map[net.Conn]bool{}})
}

// startForwarder starts f listening, and pauses it at cleanup.
func startForwarder(t tb.T, f *Forwarder) *Forwarder {
	t.Helper()
	f.mu.Lock()
	f.start()
	f.mu.Unlock()
	t.Cleanup(f.Pause)
	return f
}

// start listens and accepts; f.mu is held.
func (f *Forwarder) start() {
	f.t.Helper()
	var l net.Listener
	listenIn := func() (err error) {
		l, err = net.Listen("tcp", f.listen)
		return err
	}
	if f.n == nil {
		if err := listenIn(); err != nil {
			f.t.Fatal(err)
		}
	} else {
		InNS(f.t, f.n, listenIn)
	}
	f.listener = l
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go f.relay(in)
		}
	}()
}

// dial connects to the target, from inside dialIn if set: on a thread
// of its own, put back in the root namespace after (or discarded if it
// cannot be).
func (f *Forwarder) dial() (net.Conn, error) {
	if f.dialIn == nil {
		return net.Dial("tcp", f.target)
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(f.dialIn.NS); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	conn, err := net.Dial("tcp", f.target)
	if netns.Set(orig) == nil {
		runtime.UnlockOSThread()
	}
	return conn, err
}

func (f *Forwarder) relay(in net.Conn) {
	defer in.Close()
	if !f.track(in) {
		return
	}
	out, err := f.dial()
	if err != nil {
		return
	}
	defer out.Close()
	if !f.track(out) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
}

// Open is a namespace someone else made and will delete (a pod's, made by
// the CNI): the test only closes its handles at cleanup.
func Open(t tb.T, name string) *NS {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
	})
	return &NS{Name: name, NS: ns, NL: h}
}
