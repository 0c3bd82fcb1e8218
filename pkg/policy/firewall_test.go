package policy

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/netlab"
)

func newFirewall(t *testing.T, n *netlab.NS) *Firewall {
	t.Helper()
	c, err := NewNFTConn(int(n.NS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseLasting() })
	return &Firewall{Conn: c, Opts: DefaultOptions()}
}

func ruleset(t testing.TB, n *netlab.NS) string {
	return n.Exec(t, "nft", "list", "ruleset")
}

func TestFirewallRuleset(t *testing.T) {
	n := nodeWorld(t)
	f := newFirewall(t, n)
	in := nodeInput(
		sr("primary", "", "198.51.100.4", 0, "192.0.2.7", "198.19.0.0/16"),
		sr("everything", "", "198.51.100.12", time.Minute, "0.0.0.0/0"),
	)
	in.Node.PodLinks = []string{"lxc*", "pod0"}
	d := Compute(in)
	if changed, err := f.Apply(d); err != nil || !changed {
		t.Fatalf("first apply: changed=%v %v", changed, err)
	}
	golden(t, "nft-ruleset", ruleset(t, n))
	if changed, err := f.Apply(d); err != nil || changed {
		t.Fatalf("same state again: changed=%v %v", changed, err)
	}
	// Drift: the table deleted behind our back is written again.
	n.Exec(t, "nft", "delete", "table", "inet", "staticroute")
	if changed, err := f.Apply(d); err != nil || !changed {
		t.Fatalf("after the table was deleted: changed=%v %v", changed, err)
	}
	golden(t, "nft-ruleset", ruleset(t, n))
	// Someone else's table survives our cleanup.
	n.NFT(t, "table ip theirs {\n  chain c {\n    type filter hook input priority 0;\n  }\n}\n")
	if err := f.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := ruleset(t, n); !strings.Contains(got, "table ip theirs") || strings.Contains(got, "staticroute") {
		t.Fatalf("after cleanup:\n%s", got)
	}
	if err := f.Cleanup(); err != nil {
		t.Fatalf("cleanup twice: %v", err)
	}
}

func TestFirewallTenThousandPrefixes(t *testing.T) {
	n := nodeWorld(t)
	f := newFirewall(t, n)
	dests := make([]string, 10_000)
	for i := range dests {
		dests[i] = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).String()
	}
	if _, err := f.Apply(Compute(nodeInput(sr("many", "", "198.51.100.4", 0, dests...)))); err != nil {
		t.Fatal(err)
	}
	out := n.Exec(t, "nft", "list", "set", "inet", "staticroute", "group0")
	if c := strings.Count(out, "198.18."); c != 10_000 {
		t.Fatalf("the set holds %d of 10000 prefixes", c)
	}
}

func TestFirewallCountsPerGroup(t *testing.T) {
	w := netlab.NewWorld(t)
	d := Compute(worldInput(primaryRoute))
	if _, err := newKernel(t, w.Node).Apply(d); err != nil {
		t.Fatal(err)
	}
	f := newFirewall(t, w.Node)
	if _, err := f.Apply(d); err != nil {
		t.Fatal(err)
	}
	if got := netlab.Answers(t, w.Node); got != netlab.GwAPublic {
		t.Fatalf("echo saw %s", got)
	}
	c, err := f.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c["primary"].Packets == 0 || c["primary"].Bytes == 0 {
		t.Fatalf("counters %+v: want packets for group primary", c)
	}
}

// inbound sends n probes from a client at src in the internet to the node's
// public address and counts the replies that come back from that address.
func inbound(t *testing.T, w *netlab.World, src string, n int) int {
	t.Helper()
	var server, client net.PacketConn
	netlab.InNS(t, w.Node, func() (err error) {
		server, err = net.ListenPacket("udp4", netlab.NodePublic+":7008")
		return err
	})
	defer server.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			k, from, err := server.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = server.WriteTo(buf[:k], from)
		}
	}()
	netlab.InNS(t, w.Inet, func() (err error) {
		client, err = net.ListenPacket("udp4", src+":0")
		return err
	})
	defer client.Close()
	got := 0
	buf := make([]byte, 64)
	for range n {
		if _, err := client.WriteTo([]byte("hello"), &net.UDPAddr{IP: net.ParseIP(netlab.NodePublic), Port: 7008}); err != nil {
			t.Fatal(err)
		}
		_ = client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, from, err := client.ReadFrom(buf); err == nil && from.(*net.UDPAddr).IP.String() == netlab.NodePublic {
			got++
		}
	}
	return got
}

// A client inside a routed prefix reaches the node's public address: with
// the connmark bit restored as the packet mark, the fwmark rule and
// src_valid_mark=1, strict rp_filter accepts its packets and the replies
// leave by the public side they came in on.
func TestInboundClientInsideARoutedPrefix(t *testing.T) {
	w := netlab.NewWorld(t)
	const client = "198.19.5.5"
	w.Inet.IP(t, "addr", "add", client+"/32", "dev", "lo")
	d := Compute(worldInput(sr("wide", "", "198.51.100.4", 0, "198.19.0.0/16", netlab.EchoAddr)))
	if _, err := newKernel(t, w.Node).Apply(d); err != nil {
		t.Fatal(err)
	}
	// Control: routes alone, no marks: strict rp_filter drops the client.
	if got := inbound(t, w, client, 20); got != 0 {
		t.Fatalf("without marks %d/20 answered: the test cannot tell the marks' effect", got)
	}
	if _, err := newFirewall(t, w.Node).Apply(d); err != nil {
		t.Fatal(err)
	}
	w.Node.Sysctl(t, "net.ipv4.conf.all.src_valid_mark", "1")
	if got := inbound(t, w, client, 20); got != 20 {
		t.Fatalf("with marks %d/20 answered from %s", got, netlab.NodePublic)
	}
	// Outbound from the node still leaves via the gateway.
	if got := netlab.Answers(t, w.Node); got != netlab.GwAPublic {
		t.Fatalf("outbound after inbound: echo saw %s", got)
	}
}

// A thousand groups make a thousand sets and rules in one transaction; the
// kernel acknowledges each, and the acknowledgements must fit.
func TestFirewallThousandGroups(t *testing.T) {
	n := nodeWorld(t)
	f := newFirewall(t, n)
	var routes []*v1.StaticRoute
	all := prefixes(10_000)
	for i := range 1000 {
		routes = append(routes, sr(fmt.Sprintf("r%04d", i), "", "198.51.100.4", time.Duration(i)*time.Second, all[i*10:i*10+10]...))
	}
	if _, err := f.Apply(Compute(nodeInput(routes...))); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(ruleset(t, n), "counter packets"); c != 1000 {
		t.Fatalf("%d counters, want 1000", c)
	}
}
