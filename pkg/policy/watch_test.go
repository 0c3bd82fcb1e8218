package policy

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// WatchKernel reports a route change with its table, a rule change as
// RuleChanged and a link change as Lost, in the namespace it watches; it
// returns once its context ends.
func TestWatchKernel(t *testing.T) {
	n := nodeWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan int, 4096)
	done := make(chan error, 1)
	go func() {
		done <- WatchKernel(ctx, n.NS, func(table int) {
			select {
			case events <- table:
			default:
			}
		})
	}()
	// expect repeats change until an event for table comes: the
	// subscription starts in its own goroutine.
	expect := func(what string, table int, change, undo []string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			n.IP(t, change...)
			n.IP(t, undo...)
			wait := time.After(200 * time.Millisecond)
			for got := false; !got; {
				select {
				case e := <-events:
					if e == table {
						return
					}
				case <-wait:
					got = true
				case <-deadline:
					t.Fatalf("%s: no event for table %d", what, table)
				}
			}
		}
	}
	expect("a route in our table", 52101,
		[]string{"route", "add", "unreachable", "192.0.2.1/32", "table", "52101"},
		[]string{"route", "del", "unreachable", "192.0.2.1/32", "table", "52101"})
	expect("a route in main", 254,
		[]string{"route", "add", "192.0.2.1/32", "via", "198.51.100.1"},
		[]string{"route", "del", "192.0.2.1/32", "via", "198.51.100.1"})
	expect("a rule", RuleChanged,
		[]string{"rule", "add", "priority", "30010", "table", "52101"},
		[]string{"rule", "del", "priority", "30010", "table", "52101"})
	expect("a link", Lost,
		[]string{"link", "add", "w0", "type", "veth", "peer", "name", "w1"},
		[]string{"link", "del", "w0"})
	// Idle, it waits in the kernel: a spinning loop would burn a core.
	var before, after unix.Rusage
	n.Must(t, unix.Getrusage(unix.RUSAGE_SELF, &before))
	time.Sleep(1500 * time.Millisecond)
	n.Must(t, unix.Getrusage(unix.RUSAGE_SELF, &after))
	if used := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()); used > 500*time.Millisecond {
		t.Errorf("idle for 1.5 s, the process used %v of CPU", used)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchKernel did not return after its context ended")
	}
}
