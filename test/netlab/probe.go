package netlab

import (
	"github.com/staticroute/staticroute/test/tb"
	"sort"

	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// StartEcho answers every UDP probe with its payload and the source address
// it saw.
func StartEcho(t tb.T, n *NS) {
	var conn net.PacketConn
	InNS(t, n, func() (err error) {
		conn, err = net.ListenPacket("udp4", fmt.Sprintf("%s:%d", EchoAddr, EchoPort))
		return err
	})
	t.Cleanup(func() { conn.Close() })
	// Hundreds of probers send in bursts: a default-sized receive buffer
	// overflows, and those losses would be the test network's own.
	// SO_RCVBUFFORCE (we are root) passes net.core.rmem_max, a sysctl we
	// leave alone.
	raw, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sockErr error
	if err := raw.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	}); err != nil || sockErr != nil {
		t.Fatalf("the echo's receive buffer: %v %v", err, sockErr)
	}
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

// Prober sends numbered probes to the echo from inside a namespace and
// tallies the answers by the source address the echo saw.
type Prober struct {
	conn net.PacketConn
	mu   sync.Mutex
	sent int
	seen map[uint64]netip.Addr
	// arrivals are the answers' arrival times by the source they name,
	// in order; sentAt is when each probe went, by sequence number.
	arrivals map[netip.Addr][]time.Time
	sentAt   []time.Time
	stop     chan struct{}
	done     sync.WaitGroup
	every    time.Duration
}

func StartProber(t tb.T, n *NS, every time.Duration) *Prober {
	p := &Prober{seen: map[uint64]netip.Addr{}, arrivals: map[netip.Addr][]time.Time{}, stop: make(chan struct{}), every: every}
	InNS(t, n, func() (err error) {
		p.conn, err = net.ListenPacket("udp4", ":0")
		return err
	})
	t.Cleanup(func() { p.conn.Close() })
	dst := &net.UDPAddr{IP: net.ParseIP(EchoAddr), Port: EchoPort}
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
			src := netip.AddrFrom4([4]byte(buf[8:12]))
			p.mu.Lock()
			p.seen[seq] = src
			p.arrivals[src] = append(p.arrivals[src], time.Now())
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
			sent := time.Now()
			_, _ = p.conn.WriteTo(msg, dst)
			p.mu.Lock()
			p.sent++
			p.sentAt = append(p.sentAt, sent)
			p.mu.Unlock()
			time.Sleep(p.every)
		}
	}()
	return p
}

// First is when the first answer naming src as the source came back.
func (p *Prober) First(src string) (time.Time, bool) {
	return p.FirstAfter(src, time.Time{})
}

// FirstAfter is when the first answer naming src came back after t.
func (p *Prober) FirstAfter(src string, t time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	as := p.arrivals[netip.MustParseAddr(src)]
	i := sort.Search(len(as), func(i int) bool { return as[i].After(t) })
	if i == len(as) {
		return time.Time{}, false
	}
	return as[i], true
}

// LostBetween counts the probes sent from from to to that got no answer
// (yet: call it once answers had time to come).
func (p *Prober) LostBetween(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	lost := 0
	for seq, at := range p.sentAt {
		if at.Before(from) || at.After(to) {
			continue
		}
		if _, ok := p.seen[uint64(seq)]; !ok {
			lost++
		}
	}
	return lost
}

// Result stops sending, waits for the last answers and counts them.
func (p *Prober) Result(settle time.Duration) (sent int, by map[string]int, lost int) {
	p.stopSending()
	time.Sleep(settle)
	return p.count()
}

func (p *Prober) stopSending() { close(p.stop) }

// count closes the socket, once sending stopped and the last answers had
// their time, and counts them.
func (p *Prober) count() (sent int, by map[string]int, lost int) {
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

// Answers sends one probe at a time until one comes back, and returns the
// source address the echo saw.
func Answers(t tb.T, n *NS) string {
	t.Helper()
	p := StartProber(t, n, 20*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, a := range p.seen {
			p.mu.Unlock()
			p.Result(0)
			return a.String()
		}
		p.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	p.Result(0)
	return "no answer"
}

// StartTCPEcho serves TCP on the echo address: every line it reads it
// sends back prefixed with the source address it sees.
func StartTCPEcho(t tb.T, n *NS, port int) {
	var l net.Listener
	InNS(t, n, func() (err error) {
		l, err = net.Listen("tcp4", fmt.Sprintf("%s:%d", EchoAddr, port))
		return err
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				src := c.RemoteAddr().(*net.TCPAddr).IP.String()
				buf := make([]byte, 256)
				for {
					k, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(append([]byte(src+" "), buf[:k]...)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// DialTCP connects from inside n.
func DialTCP(t tb.T, n *NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	InNS(t, n, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// UDPEcho answers every datagram to addr (ip:port) from inside n, until
// the test ends.
func UDPEcho(t tb.T, n *NS, addr string) {
	t.Helper()
	var server net.PacketConn
	InNS(t, n, func() (err error) {
		server, err = net.ListenPacket("udp4", addr)
		return err
	})
	t.Cleanup(func() { server.Close() })
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
}

// Ask sends n datagrams from src, an address of the namespace from, to
// dst (ip:port) and counts the replies that come back from dst.
func Ask(t tb.T, from *NS, src, dst string, n int) int {
	t.Helper()
	var client net.PacketConn
	InNS(t, from, func() (err error) {
		client, err = net.ListenPacket("udp4", src+":0")
		return err
	})
	defer client.Close()
	to, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	buf := make([]byte, 64)
	for range n {
		if _, err := client.WriteTo([]byte("hello"), to); err != nil {
			t.Fatal(err)
		}
		_ = client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, from, err := client.ReadFrom(buf); err == nil && from.String() == to.String() {
			got++
		}
	}
	return got
}

// SourceChanges counts how often the source the echo saw changed from one
// answered probe to the next, among the probes sent from from to to: how
// often this prober's traffic moved between gateways.
func (p *Prober) SourceChanges(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	changes := 0
	var last netip.Addr
	for seq, at := range p.sentAt {
		if at.Before(from) || at.After(to) {
			continue
		}
		src, ok := p.seen[uint64(seq)]
		if !ok {
			continue
		}
		if last.IsValid() && src != last {
			changes++
		}
		last = src
	}
	return changes
}
