package datapath

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
	"github.com/staticroute/staticroute/test/netlab"
)

// selection is one way for a node to spread a destination's connections
// over two gateways, set up by hand in the world's node (issue 26 asks
// which to build): all to one gateway, as today; the connection's first
// packet hashed (L3+L4) into its conntrack mark by nftables, every packet
// given its connection's mark, and a rule per mark to a table per gateway;
// or a resilient nexthop group with the kernel's L4 multipath hash (the
// sysctl a pod cannot set, set here in the node's own namespace).
type selection struct {
	name  string
	setup func(b *testing.B, w *netlab.World)
}

// via routes the echo via gw in table, in the world's node.
func via(b *testing.B, w *netlab.World, table int, gw string) {
	w.Node.IP(b, "route", "add", netlab.EchoAddr+"/32", "via", gw, "dev", "vpc0", "table", fmt.Sprint(table))
}

func selections() []selection {
	return []selection{
		{"one-gateway", func(b *testing.B, w *netlab.World) {
			via(b, w, 101, netlab.GwAVPC)
			w.Node.IP(b, "rule", "add", "pref", "1000", "to", netlab.EchoAddr, "lookup", "101")
		}},
		{"nft-hash-ctmark", func(b *testing.B, w *netlab.World) {
			ctMarks(b, w, "jhash ip saddr . udp sport mod 2")
		}},
		{"nft-roundrobin-ctmark", func(b *testing.B, w *netlab.World) {
			ctMarks(b, w, "numgen inc mod 2")
		}},
		// Ours, through the datapath the router writes: one gateway, and
		// a group over A and B (lanes).
		{"staticroute-one-gateway", func(b *testing.B, w *netlab.World) {
			throughOurDatapath(b, w, policytest.Route("one", "", netlab.GwAVPC, 0, netlab.EchoAddr))
		}},
		{"staticroute-lanes", func(b *testing.B, w *netlab.World) {
			throughOurDatapath(b, w, policytest.Gateways("two", "", []string{netlab.GwAVPC, netlab.GwBVPC}, 0, netlab.EchoAddr))
		}},
		{"resilient-nexthop-l4", func(b *testing.B, w *netlab.World) {
			w.Node.Sysctl(b, "net.ipv4.fib_multipath_hash_policy", "1")
			w.Node.IP(b, "nexthop", "add", "id", "1", "via", netlab.GwAVPC, "dev", "vpc0")
			w.Node.IP(b, "nexthop", "add", "id", "2", "via", netlab.GwBVPC, "dev", "vpc0")
			w.Node.IP(b, "nexthop", "add", "id", "10", "group", "1/2", "type", "resilient", "buckets", "64")
			w.Node.IP(b, "route", "add", netlab.EchoAddr+"/32", "nhid", "10", "table", "103")
			w.Node.IP(b, "rule", "add", "pref", "1000", "to", netlab.EchoAddr, "lookup", "103")
		}},
	}
}

// throughOurDatapath applies sr in the world's node through the whole datapath.
func throughOurDatapath(b *testing.B, w *netlab.World, sr *v1.StaticRoute) {
	if _, err := newDatapath(b, w.Node).Apply(policy.Compute(worldInput(sr))); err != nil {
		b.Fatal(err)
	}
}

// ctMarks has a new connection to the echo pick its gateway by pick (an
// nftables expression giving 0 or 1) into its conntrack mark, and every
// packet of it take its connection's mark to a rule and a table of that
// gateway.
func ctMarks(b *testing.B, w *netlab.World, pick string) {
	via(b, w, 101, netlab.GwAVPC)
	via(b, w, 102, netlab.GwBVPC)
	w.Node.IP(b, "rule", "add", "pref", "900", "fwmark", "0x100/0x300", "lookup", "101")
	w.Node.IP(b, "rule", "add", "pref", "901", "fwmark", "0x200/0x300", "lookup", "102")
	// Unmarked (replies' reverse path for strict rp_filter): A's.
	w.Node.IP(b, "rule", "add", "pref", "1000", "to", netlab.EchoAddr, "lookup", "101")
	w.Node.NFT(b, `table inet sel {
  chain pre { type filter hook prerouting priority mangle;
    ct state new ip daddr `+netlab.EchoAddr+` ct mark set `+pick+` map { 0 : 0x100, 1 : 0x200 }
    ct mark & 0x300 != 0 meta mark set ct mark
  }
}`)
}

// flows are UDP sockets in the pod, one connection each, that send
// numbered probes to the echo and count answers by the gateway they came
// through (the source the echo saw).
type flows struct {
	conns []net.PacketConn
	mu    sync.Mutex
	by    []map[netip.Addr]int // per flow: answers by source
	got   atomic.Int64
	done  sync.WaitGroup
}

func openFlows(b *testing.B, pod *netlab.NS, n int) *flows {
	f := &flows{}
	for i := range n {
		var c net.PacketConn
		netlab.InNS(b, pod, func() (err error) {
			c, err = net.ListenPacket("udp4", ":0")
			return err
		})
		f.conns = append(f.conns, c)
		f.by = append(f.by, map[netip.Addr]int{})
		f.done.Add(1)
		go func() {
			defer f.done.Done()
			buf := make([]byte, 64)
			for {
				k, _, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				if k == 12 {
					f.mu.Lock()
					f.by[i][netip.AddrFrom4([4]byte(buf[8:12]))]++
					f.mu.Unlock()
					f.got.Add(1)
				}
			}
		}()
	}
	return f
}

func (f *flows) close() {
	for _, c := range f.conns {
		c.Close()
	}
	f.done.Wait()
}

// send sends n probes round-robin over the flows, as fast as it can.
func (f *flows) send(n int) {
	dst := &net.UDPAddr{IP: net.ParseIP(netlab.EchoAddr), Port: netlab.EchoPort}
	msg := make([]byte, 8)
	for i := range n {
		binary.BigEndian.PutUint64(msg, uint64(i))
		_, _ = f.conns[i%len(f.conns)].WriteTo(msg, dst)
	}
}

// BenchmarkGatewaySelection measures, for each way of spreading a
// destination over two gateways, the cost per packet of pod traffic
// through the node (50 flows, round-robin, as fast as one sender goes),
// how the flows spread (flows on A, flows on B) and whether any flow was
// split between gateways (a connection must keep its gateway).
func BenchmarkGatewaySelection(b *testing.B) {
	for _, s := range selections() {
		b.Run(s.name, func(b *testing.B) {
			w := netlab.NewWorld(b)
			s.setup(b, w)
			f := openFlows(b, w.Pod, 50)
			defer f.close()
			f.send(50 * 10) // every flow opened, its gateway chosen
			time.Sleep(200 * time.Millisecond)
			b.ResetTimer()
			f.send(b.N)
			b.StopTimer()
			time.Sleep(300 * time.Millisecond)
			f.mu.Lock()
			defer f.mu.Unlock()
			onA, onB, split := 0, 0, 0
			for _, by := range f.by {
				switch {
				case len(by) > 1:
					split++
				case by[netip.MustParseAddr(netlab.GwAPublic)] > 0:
					onA++
				case by[netip.MustParseAddr(netlab.GwBPublic)] > 0:
					onB++
				}
			}
			b.ReportMetric(float64(onA), "flows-on-A")
			b.ReportMetric(float64(onB), "flows-on-B")
			b.ReportMetric(float64(split), "flows-split")
			b.ReportMetric(100*float64(f.got.Load())/float64(b.N+500), "%-answered")
		})
	}
}
