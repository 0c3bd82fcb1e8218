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
