package group

import (
	"testing"
	"time"
)

func TestDamperHoldsAGroupForAPeriodAfterASwitch(t *testing.T) {
	var d Damper
	p := 200 * time.Millisecond
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	d.Record("g", "c", at(0))
	if _, _, ok := d.Hold("g", p, at(10)); ok {
		t.Fatal("the group's first member is no switch: nothing to hold")
	}
	d.Record("g", "b", at(100)) // a switch
	for _, tc := range []struct {
		ms   int
		hold bool
	}{{100, true}, {250, true}, {299, true}, {300, false}, {500, false}} {
		m, until, ok := d.Hold("g", p, at(tc.ms))
		if ok != tc.hold || ok && (m != "b" || !until.Equal(at(300))) {
			t.Errorf("at %d ms: hold %q until %v (%t), want %t until 300 ms", tc.ms, m, until, ok, tc.hold)
		}
	}
	d.Record("g", "b", at(250)) // the same member: no new period
	if _, _, ok := d.Hold("g", p, at(300)); ok {
		t.Error("recording the same member started a new period")
	}
	d.Forget(func(string) bool { return false })
	if _, _, ok := d.Hold("g", p, at(301)); ok || len(d.last) != 0 {
		t.Error("a forgotten group is held")
	}
}

// A group is held for its shortest probe period; a group without a
// checked member is never held; Holds names each held group's member and
// the first hold's end.
func TestDamperHoldsEveryGroupForItsPeriod(t *testing.T) {
	if got := Period(nil); got != 0 {
		t.Fatalf("Period of no probes = %s, want 0", got)
	}
	if got := Period([]Probe{{Period: time.Second}, {Period: 300 * time.Millisecond}, {Period: 2 * time.Second}}); got != 300*time.Millisecond {
		t.Fatalf("Period = %s, want the shortest, 300ms", got)
	}
	var d Damper
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, g := range []string{"a", "b", "unchecked"} {
		d.Record(g, "old", at(0))
		d.Record(g, "new", at(100)) // each switched at 100 ms
	}
	hold, first := d.Holds(map[string]time.Duration{"a": time.Second, "b": 300 * time.Millisecond, "unchecked": 0}, at(200))
	if len(hold) != 2 || hold["a"] != "new" || hold["b"] != "new" || first != 200*time.Millisecond {
		t.Fatalf("at 200 ms: %v, first ends in %s; want a and b held on new, b's hold ending in 200ms", hold, first)
	}
	if hold, first := d.Holds(map[string]time.Duration{"a": time.Second, "b": 300 * time.Millisecond}, at(400)); len(hold) != 1 || first != 700*time.Millisecond {
		t.Fatalf("at 400 ms: %v, %s; want a alone, for 700ms", hold, first)
	}
}
