package router

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/policy"
)

// runs starts loop with reconcile counting its calls (and failing while
// fail is set); it stops when the test ends.
func runs(t *testing.T, resync time.Duration, fail *atomic.Bool) (calls *atomic.Int32, poked chan struct{}) {
	t.Helper()
	calls, poked = &atomic.Int32{}, make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Loop(ctx, poked, resync, func(context.Context) error {
			calls.Add(1)
			if fail != nil && fail.Load() {
				return errors.New("netlink: boom")
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done // the loop returns once its context ends
	})
	return calls, poked
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoop(t *testing.T) {
	t.Run("reconciles once at start, then once per poke, and not otherwise", func(t *testing.T) {
		calls, poked := runs(t, time.Hour, nil)
		waitFor(t, "first reconcile", func() bool { return calls.Load() == 1 })
		poked <- struct{}{}
		waitFor(t, "reconcile after a poke", func() bool { return calls.Load() == 2 })
		time.Sleep(50 * time.Millisecond)
		if n := calls.Load(); n != 2 {
			t.Errorf("%d reconciles with an hour's resync and one poke, want 2", n)
		}
	})
	t.Run("resyncs every period without a poke", func(t *testing.T) {
		calls, _ := runs(t, 10*time.Millisecond, nil)
		waitFor(t, "five resyncs", func() bool { return calls.Load() >= 5 })
	})
	t.Run("a failure is retried with backoff, not only at the next resync", func(t *testing.T) {
		var fail atomic.Bool
		fail.Store(true)
		calls, _ := runs(t, time.Hour, &fail)
		// 5, 10, 20, 40 ms: the fifth try comes after 75 ms.
		waitFor(t, "four retries", func() bool { return calls.Load() >= 5 })
		fail.Store(false)
		n := calls.Load()
		waitFor(t, "the retry that succeeds", func() bool { return calls.Load() == n+1 })
		time.Sleep(200 * time.Millisecond) // past the next backoff step had it not reset
		if got := calls.Load(); got != n+1 {
			t.Errorf("%d reconciles after the success, want none before the resync", got-n-1)
		}
	})
}

func TestWhichKernelEventsInvalidate(t *testing.T) {
	o := policy.DefaultOptions()
	for table, want := range map[int]bool{52101: true, 52102: true, 52201: true, 52263: true, 52200: false, 52264: false,
		datapath.Lost: true, datapath.RuleChanged: false, 254: false, 100: false} {
		if got := Invalidates(table, o); got != want {
			t.Errorf("an event for table %d: invalidates %v, want %v", table, got, want)
		}
	}
}
