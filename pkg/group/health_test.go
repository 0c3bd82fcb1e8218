package group

import (
	"strings"
	"testing"
	"time"
)

// fold feeds results ("+" answered, "-" lost) and returns the health after
// each, "U" or "D".
func fold(p Probe, results string) string {
	var h Health
	var b strings.Builder
	t := time.Unix(0, 0)
	for _, r := range results {
		t = t.Add(p.Period)
		h.Observe(p, r == '+', time.Millisecond, t)
		if h.Down {
			b.WriteByte('D')
		} else {
			b.WriteByte('U')
		}
	}
	return b.String()
}

func TestHealthHysteresis(t *testing.T) {
	p := Probe{Period: 200 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 2}
	for _, tc := range []struct{ in, want string }{
		{"++++", "UUUU"},               // up from the start
		{"--", "UU"},                   // two lost: not yet
		{"---", "UUD"},                 // the third lost takes it down
		{"---+-++", "UUDDDDU"},         // up again after two answered in a row
		{"-+-+-+-+-+", "UUUUUUUUUU"},   // flapping every probe never goes down
		{"---+-+-+-+", "UUDDDDDDDD"},   // nor up again
		{"--+---++--+", "UUUUUDDUUUU"}, // a run is reset by the other result
	} {
		if got := fold(p, tc.in); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

// A gateway that flaps with a half-period of k probes changes health at
// most once per max(thresholds) probes: switches are bounded by the
// thresholds, whatever the flapping.
func TestHealthChangesAreBoundedWhenFlapping(t *testing.T) {
	p := Probe{Period: 200 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 3}
	for k := 1; k <= 8; k++ {
		var in strings.Builder
		for i := 0; i < 300; i++ {
			if (i/k)%2 == 0 {
				in.WriteByte('+')
			} else {
				in.WriteByte('-')
			}
		}
		got := fold(p, in.String())
		changes := 0
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1] {
				changes++
			}
		}
		max := 0
		if k >= 3 {
			max = 300 / k
		}
		if changes > max {
			t.Errorf("flapping every %d probes: %d changes in 300 probes, want at most %d", k, changes, max)
		}
	}
}
