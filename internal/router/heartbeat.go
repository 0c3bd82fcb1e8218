package router

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Heartbeat records when the reconcile loop last finished a reconcile,
// failed or not: a loop that has finished none for a long while is
// wedged (a call that never returns), and /healthz says so, so that the
// kubelet restarts the router. A restart costs nothing: SIGTERM leaves
// the kernel as it is and the new router adopts it.
type Heartbeat struct {
	last atomic.Int64 // unix nanoseconds; 0: the loop has not started
}

// Beat records a reconcile finished at t.
func (h *Heartbeat) Beat(t time.Time) { h.last.Store(t.UnixNano()) }

// Check says why the loop is wedged at now: nil if it has not started
// (the router waits for the API server's first lists) or finished a
// reconcile within the last within.
func (h *Heartbeat) Check(now time.Time, within time.Duration) error {
	last := h.last.Load()
	if last == 0 {
		return nil
	}
	if since := now.Sub(time.Unix(0, last)); since > within {
		return fmt.Errorf("no reconcile has finished for %s (more than %s): the loop is stuck", since.Round(time.Millisecond), within)
	}
	return nil
}

// Wedged is how long a loop may go without finishing a reconcile before
// it counts as wedged: three resync periods, and at least twice the
// longest backoff after failures (a minute), so that a loop that keeps
// failing and retrying is not taken for a stuck one.
func Wedged(resync time.Duration) time.Duration {
	return max(3*resync, 2*time.Minute)
}
