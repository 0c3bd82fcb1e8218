package main

import (
	"context"
	"time"

	"github.com/go-logr/logr"
)

// loop reconciles the node at once, then whenever poked (coalesced: a
// burst of changes is one reconcile), and every resync period, which
// repairs drift no event told of. A failure is retried with backoff, from
// 5 ms doubling to a minute, or sooner if poked.
func loop(ctx context.Context, poked <-chan struct{}, resync time.Duration, reconcile func(context.Context) error) {
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
