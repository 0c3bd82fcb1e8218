package router

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/policy"
)

// Loop reconciles the node at once, then whenever poked (coalesced: a
// burst of changes is one reconcile), and every resync period, which
// repairs drift no event told of. A failure is retried with backoff, from
// 5 ms doubling to a minute, or sooner if poked.
func Loop(ctx context.Context, poked <-chan struct{}, resync time.Duration, reconcile func(context.Context) error) {
	log := logr.FromContextOrDiscard(ctx)
	var backoff time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		default:
		}
		wait := resync
		start := time.Now()
		err := reconcile(ctx)
		if debug := log.V(1); debug.Enabled() {
			debug.Info("reconciled", "took", time.Since(start).String())
		}
		if err != nil {
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Minute)
			wait = backoff
			log.Error(err, "reconcile failed", "retryIn", wait.String())
		} else {
			backoff = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-poked:
		case <-timer.C:
		}
	}
}

// Invalidates says whether a kernel event for table means the kernel may
// no longer hold what the applier last wrote, so that the next apply must
// read it again: a route of one of our tables (the steering tables or a
// probe slot's) changed, or a link changed or events were lost
// (datapath.Lost). A rule change (datapath.RuleChanged) or a route of another
// table only needs a reconcile: apply lists the rules every time, and
// reads the main table every time.
func Invalidates(table int, o policy.Options) bool {
	slot := table - o.ProbeTableBase
	return table == datapath.Lost || table == o.Tables[0] || table == o.Tables[1] || slot >= 1 && slot <= policy.MaxProbes
}

// EventClock remembers when the oldest change that no reconcile has taken
// up yet arrived (a watch event, a gateway's health): the start of "event
// → kernel". Kernel events do not mark it: they are our own writes echoed,
// or drift.
type EventClock struct{ first atomic.Int64 }

// Mark notes a change at now, unless an older one is pending.
func (c *EventClock) Mark(now time.Time) { c.first.CompareAndSwap(0, now.UnixNano()) }

// Take returns the pending change's time and clears it; false if none.
func (c *EventClock) Take() (time.Time, bool) {
	v := c.first.Swap(0)
	if v == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, v), true
}
