package policy

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// world is the tutorial's world in namespaces: a switch with a VPC bridge
// and a public bridge; a node with a public and a VPC interface and strict
// rp_filter; a pod behind the node, masqueraded as a CNI does; two NAT
// gateways that masquerade only VPC sources to their own public address;
// and an "internet" that owns the echo address and answers with the
// source address it sees. An answer naming the node's own public address
// is a leak.
//
//	VPC 198.51.100.0/24: node .10, gateway A .4, gateway B .12
//	public 203.0.113.0/26: internet .1 (the node's default gateway),
//	  node .10, gateway A .20, gateway B .21
//	pod 198.18.64.2/24 behind the node (198.18.64.1); echo 192.0.2.7
type world struct {
	sw, node, pod, gwA, gwB, inet *testNS
}

const (
	echoAddr   = "192.0.2.7"
	echoPort   = 7007
	nodePublic = "203.0.113.10"
	gwAPublic  = "203.0.113.20"
	gwBPublic  = "203.0.113.21"
)

func newWorld(t testing.TB) *world {
	w := &world{sw: newTestNS(t), node: newTestNS(t), pod: newTestNS(t), gwA: newTestNS(t), gwB: newTestNS(t), inet: newTestNS(t)}
	w.sw.ip(t, "link", "add", "br-vpc", "type", "bridge")
	w.sw.ip(t, "link", "add", "br-pub", "type", "bridge")
	w.sw.ip(t, "link", "set", "br-vpc", "up")
	w.sw.ip(t, "link", "set", "br-pub", "up")
	plug := func(host *testNS, ifname, bridge, cidr string) {
		port := fmt.Sprintf("p%d", portCounter.Add(1))
		w.sw.ip(t, "link", "add", "name", port, "type", "veth", "peer", "name", ifname, "netns", host.Name)
		w.sw.ip(t, "link", "set", port, "master", bridge, "up")
		host.ip(t, "addr", "add", cidr, "dev", ifname)
		host.ip(t, "link", "set", ifname, "up")
	}
	plug(w.node, "vpc0", "br-vpc", "198.51.100.10/24")
	plug(w.node, "pub0", "br-pub", nodePublic+"/26")
	plug(w.gwA, "vpc", "br-vpc", "198.51.100.4/24")
	plug(w.gwA, "pub", "br-pub", gwAPublic+"/26")
	plug(w.gwB, "vpc", "br-vpc", "198.51.100.12/24")
	plug(w.gwB, "pub", "br-pub", gwBPublic+"/26")
	plug(w.inet, "pub", "br-pub", "203.0.113.1/26")

	// The pod, masqueraded by the node like a CNI does.
	w.node.ip(t, "link", "add", "name", "pod0", "type", "veth", "peer", "name", "eth0", "netns", w.pod.Name)
	w.node.ip(t, "addr", "add", "198.18.64.1/24", "dev", "pod0")
	w.node.ip(t, "link", "set", "pod0", "up")
	w.pod.ip(t, "addr", "add", "198.18.64.2/24", "dev", "eth0")
	w.pod.ip(t, "link", "set", "eth0", "up")
	w.pod.ip(t, "route", "add", "default", "via", "198.18.64.1")

	w.node.ip(t, "route", "add", "default", "via", "203.0.113.1", "dev", "pub0")
	w.node.sysctl(t, "net.ipv4.ip_forward", "1")
	w.node.sysctl(t, "net.ipv4.conf.all.rp_filter", "1")
	w.node.sysctl(t, "net.ipv4.conf.default.rp_filter", "1")
	for _, l := range []string{"vpc0", "pub0", "pod0"} {
		w.node.sysctl(t, "net.ipv4.conf."+l+".rp_filter", "1")
	}
	w.node.nft(t, `table ip cni {
  chain post { type nat hook postrouting priority 100; ip saddr 198.18.64.0/24 oifname != "pod0" masquerade; }
}`)

	for _, gw := range []*testNS{w.gwA, w.gwB} {
		gw.sysctl(t, "net.ipv4.ip_forward", "1")
		gw.ip(t, "route", "add", "default", "via", "203.0.113.1", "dev", "pub")
		gw.nft(t, `table ip nat {
  chain post { type nat hook postrouting priority 100; ip saddr 198.51.100.0/24 oifname "pub" masquerade; }
}`)
	}

	// The internet owns the echo address. Real routers ARP from their own
	// address; without arp_announce=2 it would ARP as 192.0.2.7, which the
	// node's strict rp_filter refuses once 192.0.2.7 is steered.
	w.inet.ip(t, "addr", "add", echoAddr+"/32", "dev", "lo")
	w.inet.sysctl(t, "net.ipv4.conf.all.arp_announce", "2")
	w.inet.sysctl(t, "net.ipv4.conf.pub.arp_announce", "2")
	startEcho(t, w.inet)
	return w
}

var portCounter atomic.Int64

func (n *testNS) sysctl(t testing.TB, key, value string) {
	t.Helper()
	n.exec(t, "sysctl", "-q", "-w", key+"="+value)
}

func (n *testNS) nft(t testing.TB, ruleset string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", n.Name, err, out)
	}
}

// inNS runs f on a thread inside ns, so that sockets f opens belong to ns;
// the thread returns to its namespace before it is unlocked.
func inNS(t testing.TB, n *testNS, f func() error) {
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

// startEcho answers every UDP probe with its payload and the source address
// it saw.
func startEcho(t testing.TB, n *testNS) {
	var conn net.PacketConn
	inNS(t, n, func() (err error) {
		conn, err = net.ListenPacket("udp4", fmt.Sprintf("%s:%d", echoAddr, echoPort))
		return err
	})
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			k, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			src := from.(*net.UDPAddr).AddrPort().Addr().As4()
			out := append(append([]byte{}, buf[:k]...), src[:]...)
			_, _ = conn.WriteTo(out, from)
		}
	}()
}

// prober sends numbered probes to the echo from inside a namespace and
// tallies the answers by the source address the echo saw.
type prober struct {
	conn  net.PacketConn
	mu    sync.Mutex
	sent  int
	seen  map[uint64]netip.Addr
	stop  chan struct{}
	done  sync.WaitGroup
	every time.Duration
}

func startProber(t testing.TB, n *testNS, every time.Duration) *prober {
	p := &prober{seen: map[uint64]netip.Addr{}, stop: make(chan struct{}), every: every}
	inNS(t, n, func() (err error) {
		p.conn, err = net.ListenPacket("udp4", ":0")
		return err
	})
	t.Cleanup(func() { p.conn.Close() })
	dst := &net.UDPAddr{IP: net.ParseIP(echoAddr), Port: echoPort}
	p.done.Add(2)
	go func() {
		defer p.done.Done()
		buf := make([]byte, 64)
		for {
			k, _, err := p.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if k != 12 {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[:8])
			p.mu.Lock()
			p.seen[seq] = netip.AddrFrom4([4]byte(buf[8:12]))
			p.mu.Unlock()
		}
	}()
	go func() {
		defer p.done.Done()
		msg := make([]byte, 8)
		for seq := uint64(0); ; seq++ {
			select {
			case <-p.stop:
				return
			default:
			}
			binary.BigEndian.PutUint64(msg, seq)
			_, _ = p.conn.WriteTo(msg, dst)
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
			time.Sleep(p.every)
		}
	}()
	return p
}

// result stops sending, waits for the last answers and counts them.
func (p *prober) result(settle time.Duration) (sent int, by map[string]int, lost int) {
	close(p.stop)
	time.Sleep(settle)
	p.conn.Close()
	p.done.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	by = map[string]int{}
	for _, a := range p.seen {
		by[a.String()]++
	}
	return p.sent, by, p.sent - len(p.seen)
}

// answers sends one probe at a time until one comes back, and returns the
// source address the echo saw.
func answers(t testing.TB, n *testNS) string {
	t.Helper()
	p := startProber(t, n, 20*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, a := range p.seen {
			p.mu.Unlock()
			p.result(0)
			return a.String()
		}
		p.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	p.result(0)
	return "no answer"
}
