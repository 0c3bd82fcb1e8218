package router

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// LatestWriter writes node states in the background, so that a reconcile,
// and so a switch of the kernel, never waits for the API server. The
// latest state wins: one not yet written is replaced by a newer one. One
// write is in flight at a time. A failed write is tried again with
// backoff (the API server's Retry-After when it gives one, as it does
// when priority and fairness refuses a write) until it succeeds or a
// newer state replaces it. A mass failover, when the API server is
// busiest, thus costs each node at most one write per state it reaches,
// and fewer when states follow each other faster than writes go through.
type LatestWriter struct {
	Writer NodeStateWriter
	Log    logr.Logger
	// Backoff bounds the wait after a failure: from Backoff[0] doubling
	// to Backoff[1]. Zero: 100 ms to 30 s.
	Backoff [2]time.Duration

	mu      sync.Mutex
	pending *v1.StaticRouteNodeState
	manager string
	wake    chan struct{}
}

// NewLatestWriter writes through w.
func NewLatestWriter(w NodeStateWriter, log logr.Logger) *LatestWriter {
	return &LatestWriter{Writer: w, Log: log, wake: make(chan struct{}, 1)}
}

// ApplyNodeState queues obj to be written as fieldManager, replacing any
// state not written yet, and returns at once.
func (l *LatestWriter) ApplyNodeState(_ context.Context, obj *v1.StaticRouteNodeState, fieldManager string) error {
	l.mu.Lock()
	l.pending, l.manager = obj, fieldManager
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // already woken
	}
	return nil
}

// Pending says whether a state waits to be written.
func (l *LatestWriter) Pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending != nil
}

// Run writes queued states until ctx ends.
func (l *LatestWriter) Run(ctx context.Context) {
	first, most := l.Backoff[0], l.Backoff[1]
	if first == 0 {
		first, most = 100*time.Millisecond, 30*time.Second
	}
	var wait time.Duration
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		for {
			l.mu.Lock()
			obj, manager := l.pending, l.manager
			l.pending = nil
			l.mu.Unlock()
			if obj == nil {
				break
			}
			err := l.Writer.ApplyNodeState(ctx, obj, manager)
			if err == nil {
				if failing {
					l.Log.Info("node state written again", "node", obj.Name)
				}
				failing, wait = false, 0
				continue
			}
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			if l.pending == nil { // nothing newer came meanwhile
				l.pending, l.manager = obj, manager
			}
			l.mu.Unlock()
			wait = min(max(2*wait, first), most)
			if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			if !failing {
				l.Log.Error(err, "writing the node state failed; the kernel is not held up, the latest state is written when the API server takes it", "retryIn", wait.String())
			} else {
				l.Log.V(1).Info("writing the node state failed again", "err", err.Error(), "retryIn", wait.String())
			}
			failing = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}
