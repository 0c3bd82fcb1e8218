package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// gated is an API server that takes each write only when the test says.
type gated struct {
	calls   chan string
	results chan error
}

func (g *gated) ApplyNodeState(ctx context.Context, obj *v1.StaticRouteNodeState, _ string) error {
	g.calls <- obj.ResourceVersion
	select {
	case err := <-g.results:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func state(version string) *v1.StaticRouteNodeState {
	return &v1.StaticRouteNodeState{ObjectMeta: metav1.ObjectMeta{Name: "node-1", ResourceVersion: version}}
}

// A write that hangs holds up no caller; states queued meanwhile collapse
// into the latest; a failed write is tried again unless a newer state came.
func TestLatestWriterNeverBlocksAndWritesTheLatest(t *testing.T) {
	g := &gated{calls: make(chan string), results: make(chan error)}
	w := NewLatestWriter(g, logr.Discard())
	w.Backoff = [2]time.Duration{time.Millisecond, 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	queue := func(v string) {
		t.Helper()
		done := make(chan struct{})
		go func() { _ = w.ApplyNodeState(ctx, state(v), FieldOwner); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("queueing state %s waited for the API server", v)
		}
	}
	expect := func(v string) {
		t.Helper()
		select {
		case got := <-g.calls:
			if got != v {
				t.Fatalf("wrote state %s, want %s", got, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("state %s never written", v)
		}
	}
	queue("1")
	expect("1") // in flight, held by the API server
	queue("2")
	queue("3")
	g.results <- errors.New("the server is currently unable to handle the request")
	expect("3") // 1 failed, but 3 is newer: 1 and 2 are never written
	g.results <- errors.New("too many requests")
	expect("3") // nothing newer: the same state again
	g.results <- nil
	deadline := time.Now().Add(5 * time.Second)
	for w.Pending() {
		if time.Now().After(deadline) {
			t.Fatal("a state is still pending after its write went through")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case v := <-g.calls:
		t.Fatalf("wrote %s after everything was written", v)
	case <-time.After(50 * time.Millisecond):
	}
}
