package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// Told to stop, the webhook is not ready at once and still serves for
// the delay; a second signal stops it at once.
func TestStopAfterDelay(t *testing.T) {
	for _, second := range []bool{false, true} {
		sig := make(chan os.Signal, 2)
		var s stopping
		ctx := stopAfterDelay(sig, time.Hour, &s)
		if s.check(nil) != nil {
			t.Fatal("not ready before any signal")
		}
		sig <- syscall.SIGTERM
		deadline := time.Now().Add(10 * time.Second)
		for s.check(nil) == nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if s.check(nil) == nil {
			t.Fatal("still ready after SIGTERM")
		}
		if !second {
			select {
			case <-ctx.Done():
				t.Fatal("stopped before the delay")
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		sig <- syscall.SIGTERM
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a second signal did not stop it")
		}
	}
}
