package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
)

// Result is one probe's outcome.
type Result struct {
	Answered bool
	RTT      time.Duration
	// Err says why a probe could not be sent (not why it was lost).
	Err error
}

// prober sends probes of one path with one mark.
type prober interface {
	// probe sends one probe and waits for its answer until timeout.
	probe(ctx context.Context, timeout time.Duration) Result
	close()
}

// newProber opens a prober for p whose packets carry mark: the mark sends
// them through p's gateway (policy.Options.ProbeMark).
func newProber(p group.Path, mark uint32, id int) (prober, error) {
	if p.Protocol == v1.ProbeTCP {
		return &tcpProber{addr: netip.AddrPortFrom(p.Target, p.Port).String(), mark: mark}, nil
	}
	return newICMPProber(p.Target, mark, id)
}

// markSocket sets SO_MARK on a socket before it sends (CAP_NET_ADMIN).
func markSocket(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("SO_MARK %#x: %w", mark, err)
		}
		return nil
	}
}

// tcpProber connects to the target and closes at once with a reset, so
// that no TIME_WAIT is left behind. Only a completed connect counts: a
// refusal may come from a gateway that filters, not from the target.
type tcpProber struct {
	addr string
	mark uint32
}

func (t *tcpProber) probe(ctx context.Context, timeout time.Duration) Result {
	d := net.Dialer{Timeout: timeout, Control: markSocket(t.mark)}
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp4", t.addr)
	if err != nil {
		// EPERM: the mark could not be set (no CAP_NET_ADMIN), or a
		// firewall refused the probe; anything else is a probe lost.
		if errors.Is(err, unix.EPERM) {
			return Result{Err: err}
		}
		return Result{}
	}
	rtt := time.Since(start)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
	return Result{Answered: true, RTT: rtt}
}

func (t *tcpProber) close() {}

// icmpProber sends echo requests from a raw socket of its own, marked,
// and matches replies by identifier and sequence. A raw ICMP socket sees
// every ICMP packet the node receives; the identifier tells ours apart.
type icmpProber struct {
	conn   net.PacketConn
	target *net.IPAddr
	id     int

	mu      sync.Mutex
	seq     int
	waiting map[int]chan time.Time
	done    chan struct{}
}

func newICMPProber(target netip.Addr, mark uint32, id int) (*icmpProber, error) {
	lc := net.ListenConfig{Control: markSocket(mark)}
	conn, err := lc.ListenPacket(context.Background(), "ip4:icmp", "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("ICMP socket (needs CAP_NET_RAW): %w", err)
	}
	p := &icmpProber{conn: conn, target: &net.IPAddr{IP: target.AsSlice()}, id: id & 0xffff, waiting: map[int]chan time.Time{}, done: make(chan struct{})}
	go p.read()
	return p, nil
}

func (p *icmpProber) read() {
	defer close(p.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.ID != p.id || from.String() != p.target.String() {
			continue
		}
		p.mu.Lock()
		if ch, ok := p.waiting[echo.Seq]; ok {
			ch <- at
			delete(p.waiting, echo.Seq)
		}
		p.mu.Unlock()
	}
}

func (p *icmpProber) probe(ctx context.Context, timeout time.Duration) Result {
	p.mu.Lock()
	p.seq = (p.seq + 1) & 0xffff
	seq := p.seq
	ch := make(chan time.Time, 1)
	p.waiting[seq] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, seq)
		p.mu.Unlock()
	}()
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: []byte("staticroute " + strconv.Itoa(seq))}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return Result{Err: err}
	}
	start := time.Now()
	if _, err := p.conn.WriteTo(b, p.target); err != nil {
		// Unreachable (the probe table's fail-closed default, or no
		// neighbour): lost, as a probe that got no answer.
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return Result{Err: err}
		}
		return Result{}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case at := <-ch:
		return Result{Answered: true, RTT: at.Sub(start)}
	case <-t.C:
	case <-ctx.Done():
	}
	return Result{}
}

func (p *icmpProber) close() {
	_ = p.conn.Close()
	<-p.done
}
