package health

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
)

// fakeProber answers while its path is up, and counts its probes.
type fakeProber struct {
	up      *atomic.Bool
	sent    *atomic.Int32
	mark    uint32
	onClose func()
}

func (f *fakeProber) probe(ctx context.Context, timeout time.Duration) Result {
	f.sent.Add(1)
	if f.up.Load() {
		return Result{Answered: true, RTT: time.Millisecond}
	}
	select {
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	return Result{}
}

func (f *fakeProber) close() { f.onClose() }

func TestMonitorFollowsProbesAndPokesOnChange(t *testing.T) {
	path := group.Path{Gateway: netip.MustParseAddr("198.51.100.4"), Target: netip.MustParseAddr("192.0.2.7"), Protocol: v1.ProbeICMP}
	probe := policy.Probe{Slot: 5, Probe: group.Probe{Path: path, Period: 10 * time.Millisecond, Timeout: 5 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 2}}
	var up atomic.Bool
	up.Store(true)
	var sent, open, closed atomic.Int32
	var marks sync.Map
	var pokes atomic.Int32
	m := &Monitor{
		Mark:    func(slot int) uint32 { return 0x40 | uint32(slot) },
		Changed: func() { pokes.Add(1) },
		Log:     logr.Discard(),
		open: func(p group.Path, mark uint32, _ int) (prober, error) {
			open.Add(1)
			marks.Store(mark, true)
			return &fakeProber{up: &up, sent: &sent, mark: mark, onClose: func() { closed.Add(1) }}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Set(ctx, []policy.Probe{probe})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 5 s for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("probes", func() bool { return sent.Load() >= 3 && pokes.Load() >= 1 })
	// The first answer takes the path out of Pending: one poke, so that
	// a new member takes over within a round trip.
	if s := m.Health()[path].State(time.Now()); s != group.Up || pokes.Load() != 1 {
		t.Fatalf("an answering path: %s (health %+v), pokes %d, want Up and 1", s, m.Health()[path], pokes.Load())
	}
	if _, ok := marks.Load(uint32(0x45)); !ok { // set before its first probe
		t.Fatal("the prober was not opened with the slot's mark 0x45")
	}
	up.Store(false)
	// The health is stored first and the poke follows it: wait for both,
	// then make sure it was one poke.
	waitFor("down", func() bool { return m.Health()[path].Down && pokes.Load() >= 1 })
	time.Sleep(30 * time.Millisecond) // three periods: time for a second poke, if any
	if pokes.Load() != 2 {
		t.Fatalf("pokes %d after going down, want 2", pokes.Load())
	}
	// Tuning the check (another period) restarts the prober and keeps
	// what is known of the path.
	tuned := probe
	tuned.Period = 20 * time.Millisecond
	m.Set(ctx, []policy.Probe{tuned})
	waitFor("the tuned prober", func() bool { return open.Load() == 2 })
	if closed.Load() != 1 || !m.Health()[path].Down {
		t.Fatalf("after tuning: opened %d, closed %d, health %+v", open.Load(), closed.Load(), m.Health()[path])
	}
	up.Store(true)
	waitFor("up", func() bool { return !m.Health()[path].Down && pokes.Load() >= 3 })
	time.Sleep(60 * time.Millisecond) // three periods of the tuned check
	if pokes.Load() != 3 {
		t.Fatalf("pokes %d after coming back, want 3", pokes.Load())
	}
	if h := m.Health()[path]; h.Since.IsZero() || h.RTT != time.Millisecond {
		t.Fatalf("health %+v", h)
	}
	// Gone from the desired state: the prober stops, the path is forgotten.
	m.Set(ctx, nil)
	if closed.Load() != 2 || len(m.Health()) != 0 {
		t.Fatalf("after removal: closed %d, health %v", closed.Load(), m.Health())
	}
	n := sent.Load()
	time.Sleep(50 * time.Millisecond)
	if sent.Load() != n {
		t.Fatal("a removed probe still runs")
	}
}
