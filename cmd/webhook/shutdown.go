package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// stopping is set when the webhook was told to stop: /readyz fails from
// then on, while admission is still served for the shutdown delay.
type stopping struct{ atomic.Bool }

func (s *stopping) check(*http.Request) error {
	if s.Load() {
		return errors.New("shutting down")
	}
	return nil
}

// stopAfterDelay is a context that ends delay after the first signal on
// sig (at once on a second). In between, s says the webhook is stopping:
// the API server learns that the pod's endpoint is gone a moment after
// the kubelet sends SIGTERM, and a webhook that stopped listening at once
// was still called meanwhile (a create refused with "connection refused"
// during a rollout, on real nodes).
func stopAfterDelay(sig <-chan os.Signal, delay time.Duration, s *stopping) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sig
		s.Store(true)
		select {
		case <-time.After(delay):
		case <-sig:
		}
		cancel()
	}()
	return ctx
}
