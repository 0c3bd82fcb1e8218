package router

import (
	"context"
	"testing"
	"time"
)

// A loop whose reconcile never returns (the fault, injected here as a
// reconcile that blocks) stops beating; Check then fails. One that keeps
// failing still beats.
func TestHeartbeatTellsAWedgedLoop(t *testing.T) {
	var hb Heartbeat
	if err := hb.Check(time.Now(), time.Millisecond); err != nil {
		t.Fatalf("a loop not started yet: %v, want healthy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan struct{}, 100)
	stuck := make(chan struct{})
	go Loop(ctx, nil, 5*time.Millisecond, func(ctx context.Context) error {
		defer hb.Beat(time.Now())
		calls <- struct{}{}
		if len(calls) >= 3 {
			select { // the third call wedges
			case <-stuck:
			case <-ctx.Done():
			}
		}
		return nil
	})
	for range 3 {
		<-calls
	}
	if err := hb.Check(time.Now(), time.Second); err != nil {
		t.Fatalf("right after two reconciles: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	err := hb.Check(time.Now(), 50*time.Millisecond)
	if err == nil {
		t.Fatal("a loop stuck for 100 ms passes a 50 ms check")
	}
	t.Log(err)
	close(stuck)
}

func TestWedged(t *testing.T) {
	if w := Wedged(30 * time.Second); w != 2*time.Minute {
		t.Errorf("resync 30 s: %s, want 2m (the backoff's minute, twice)", w)
	}
	if w := Wedged(time.Minute); w != 3*time.Minute {
		t.Errorf("resync 1 m: %s, want 3m", w)
	}
}
