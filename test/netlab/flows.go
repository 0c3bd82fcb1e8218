package netlab

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/staticroute/staticroute/test/tb"
)

// Sources are the sources the echo named in this prober's answers, in the
// order each first came back.
func (p *Prober) Sources() []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	type first struct {
		src netip.Addr
		at  time.Time
	}
	var fs []first
	for src, at := range p.arrivals {
		fs = append(fs, first{src, at[0]})
	}
	slices.SortFunc(fs, func(a, b first) int { return a.at.Compare(b.at) })
	out := make([]netip.Addr, len(fs))
	for i, f := range fs {
		out[i] = f.src
	}
	return out
}

// TCPFlow is one TCP connection from inside a namespace to the TCP echo
// (StartTCPEcho): it sends a line every period and reads the answers,
// each naming the source the echo saw.
type TCPFlow struct {
	conn    net.Conn
	mu      sync.Mutex
	sources []netip.Addr // distinct, in the order first seen
	last    netip.Addr
	answers int
	err     error // the first read or write error: the connection broke
	stop    chan struct{}
	done    sync.WaitGroup
}

// StartTCPFlow connects from inside n to addr (the echo's address and
// port) and exchanges a line every period until Stop.
func StartTCPFlow(t tb.T, n *NS, addr string, every time.Duration) *TCPFlow {
	t.Helper()
	f := &TCPFlow{conn: DialTCP(t, n, addr), stop: make(chan struct{})}
	f.done.Add(2)
	go func() {
		defer f.done.Done()
		lines := bufio.NewScanner(f.conn)
		for lines.Scan() {
			src, _, _ := strings.Cut(lines.Text(), " ")
			a, err := netip.ParseAddr(src)
			f.mu.Lock()
			if err == nil {
				if !slices.Contains(f.sources, a) {
					f.sources = append(f.sources, a)
				}
				f.last = a
				f.answers++
			}
			f.mu.Unlock()
		}
		f.broke(lines.Err())
	}()
	go func() {
		defer f.done.Done()
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			case <-time.After(every):
			}
			if _, err := fmt.Fprintf(f.conn, "line %d\n", i); err != nil {
				f.broke(err)
				return
			}
		}
	}()
	return f
}

func (f *TCPFlow) broke(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil && err != nil {
		f.err = err
	}
}

// Stop ends the flow and waits for its goroutines.
func (f *TCPFlow) Stop() {
	close(f.stop)
	f.conn.Close()
	f.done.Wait()
}

// State is the sources seen so far, in order, how many answers came, and
// the error that broke the connection (nil: it stands).
func (f *TCPFlow) State() (sources []netip.Addr, answers int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sources), f.answers, f.err
}

// AddGateway plugs a third (fourth, …) NAT gateway into a small world:
// vpc on the VPC, public on the public side, masquerading VPC sources to
// its public address like gateways A and B.
func (w *World) AddGateway(t tb.T, vpc, public string) *NS {
	t.Helper()
	gw := New(t)
	for _, side := range []struct{ link, bridge, addr string }{
		{"vpc", "br-vpc", fmt.Sprintf("%s/%d", vpc, w.VPC.Bits())}, {"pub", "br-pub", fmt.Sprintf("%s/%d", public, w.Public.Bits())},
	} {
		port := fmt.Sprintf("p%d", portCounter.Add(1))
		w.Switch.IP(t, "link", "add", "name", port, "type", "veth", "peer", "name", side.link, "netns", gw.Name)
		w.Switch.IP(t, "link", "set", port, "master", side.bridge, "up")
		gw.IP(t, "addr", "add", side.addr, "dev", side.link)
		gw.IP(t, "link", "set", side.link, "up")
	}
	natGateway(t, gw, w.Internet, w.VPC)
	return gw
}

// natGateway makes gw forward to the internet and masquerade the VPC's
// sources to its public address.
func natGateway(t tb.T, gw *NS, internet string, vpc netip.Prefix) {
	gw.Sysctl(t, "net.ipv4.ip_forward", "1")
	gw.IP(t, "route", "add", "default", "via", internet, "dev", "pub")
	gw.NFT(t, fmt.Sprintf(`table ip nat {
  chain post { type nat hook postrouting priority 100; ip saddr %s oifname "pub" masquerade; }
}`, vpc))
}

// TCPEchoPort is where tests run the TCP echo (StartTCPEcho) for flows.
const TCPEchoPort = 7009

// Flows are UDP flows (each a Prober, one socket, a probe every 5 ms)
// and TCP flows (each a TCPFlow, a line every 20 ms) to the echo.
type Flows struct {
	UDP []*Prober
	TCP []*TCPFlow
}

// StartFlows starts n UDP and then n TCP flows from each namespace in
// from, in turn, one after another: connections to a group over several
// gateways take their gateways round-robin in that order, so each
// protocol's flows of each namespace spread too. The TCP flows go to the
// TCP echo on TCPEchoPort.
func StartFlows(t tb.T, n int, from ...*NS) Flows {
	t.Helper()
	var fs Flows
	for _, ns := range from {
		for range n {
			p := StartProber(t, ns, 5*time.Millisecond)
			fs.UDP = append(fs.UDP, p)
			p.waitFirst() // its connection exists before the next one's
		}
		for range n {
			fs.TCP = append(fs.TCP, StartTCPFlow(t, ns, fmt.Sprintf("%s:%d", EchoAddr, TCPEchoPort), 20*time.Millisecond))
		}
	}
	return fs
}

// waitFirst waits until the prober has sent its first probe (at most a
// second).
func (p *Prober) waitFirst() {
	for range 1000 {
		p.mu.Lock()
		sent := p.sent
		p.mu.Unlock()
		if sent > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Sources is each flow's sources so far, in the order they came: the UDP
// flows first, then the TCP ones.
func (fs Flows) Sources() [][]netip.Addr {
	var out [][]netip.Addr
	for _, p := range fs.UDP {
		out = append(out, p.Sources())
	}
	for _, f := range fs.TCP {
		s, _, _ := f.State()
		out = append(out, s)
	}
	return out
}

// BySource counts the flows by the one source each has had; flows with
// none or several are listed apart, by index in Sources' order.
func BySource(sources [][]netip.Addr) (by map[string]int, odd []string) {
	by = map[string]int{}
	for i, s := range sources {
		if len(s) != 1 {
			odd = append(odd, fmt.Sprintf("flow %d: %v", i, s))
			continue
		}
		by[s[0].String()]++
	}
	return by, odd
}
