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
		h.Observe(p, Damping{}, r == '+', time.Millisecond, t)
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

// A path is Pending until its first answer, whatever came before: lost
// probes take it down, not up.
func TestHealthIsPendingUntilAProbeIsAnswered(t *testing.T) {
	p := Probe{Period: 200 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 3}
	var h Health
	now := t0
	if s := h.State(now); s != Pending {
		t.Fatalf("never probed: %s, want Pending", s)
	}
	if h.Observe(p, Damping{}, false, 0, now) || h.State(now) != Pending {
		t.Fatalf("one lost: %s, want Pending and no change", h.State(now))
	}
	if !h.Observe(p, Damping{}, true, time.Millisecond, now) || h.State(now) != Up {
		t.Fatalf("the first answer: %s, want Up, and a change to report", h.State(now))
	}
	var dead Health
	for range 3 {
		dead.Observe(p, Damping{}, false, 0, now)
	}
	if s := dead.State(now); s != Down {
		t.Fatalf("three lost from the start: %s, want Down", s)
	}
}

// flapFor feeds a gateway that is down for down and up for up, n times,
// with one probe per period, and returns the health and when it ended.
func flapFor(p Probe, d Damping, h *Health, start time.Time, down, up time.Duration, n int) time.Time {
	now := start
	for range n {
		for end := now.Add(down); now.Before(end); now = now.Add(p.Period) {
			h.Observe(p, d, false, 0, now)
		}
		for end := now.Add(up); now.Before(end); now = now.Add(p.Period) {
			h.Observe(p, d, true, time.Millisecond, now)
		}
	}
	return now
}

func TestFlapDamping(t *testing.T) {
	p := Probe{Period: 200 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 3}
	d := DefaultDamping()
	up := func(h *Health, now time.Time) {
		for range 3 {
			h.Observe(p, d, true, time.Millisecond, now)
			now = now.Add(p.Period)
		}
	}
	t.Run("one long outage is not damped", func(t *testing.T) {
		var h Health
		up(&h, t0)
		end := flapFor(p, d, &h, t0.Add(time.Second), 30*time.Second, 2*time.Second, 1)
		if s := h.State(end); s != Up {
			t.Fatalf("back after 30 s down: %s, want Up", s)
		}
	})
	t.Run("a gateway back within a second is held until its penalty decays", func(t *testing.T) {
		var h Health
		up(&h, t0)
		end := flapFor(p, d, &h, t0.Add(time.Second), time.Second, time.Second, 1)
		if s := h.State(end); s != Damped {
			t.Fatalf("after one 1 s flap: %s, want Damped", s)
		}
		held := h.DampedUntil.Sub(h.Since)
		if held < 5*time.Second || held > 8*time.Second {
			t.Errorf("held %s after its return, want about 7 s", held)
		}
		if s := h.State(h.DampedUntil); s != Up {
			t.Errorf("at the release: %s, want Up", s)
		}
	})
	t.Run("flapping on accumulates, and the hold is bounded", func(t *testing.T) {
		var h Health
		up(&h, t0)
		end := flapFor(p, d, &h, t0.Add(time.Second), time.Second, time.Second, 20)
		if s := h.State(end); s != Damped {
			t.Fatalf("after 20 flaps: %s, want Damped", s)
		}
		if held := h.DampedUntil.Sub(h.Since); held < 15*time.Second || held > d.MaxSuppress {
			t.Errorf("held %s after the last change, want more than after one flap, at most --flap-max-suppress %s", held, d.MaxSuppress)
		}
		if h.Flaps != 40 {
			t.Errorf("%d changes counted, want 40", h.Flaps)
		}
		short := d
		short.MaxSuppress = 10 * time.Second
		var capped Health
		up(&capped, t0)
		flapFor(p, short, &capped, t0.Add(time.Second), time.Second, time.Second, 20)
		if held := capped.DampedUntil.Sub(capped.Since); held > short.MaxSuppress {
			t.Errorf("held %s after the last change, want at most %s", held, short.MaxSuppress)
		}
	})
	t.Run("a gateway down for 3 s then back is taken back at once", func(t *testing.T) {
		var h Health
		up(&h, t0)
		end := flapFor(p, d, &h, t0.Add(time.Second), 3*time.Second, time.Second, 1)
		if s := h.State(end); s != Up {
			t.Fatalf("back after 3 s down: %s, want Up", s)
		}
	})
	t.Run("off", func(t *testing.T) {
		var h Health
		up(&h, t0)
		end := flapFor(p, Damping{}, &h, t0.Add(time.Second), time.Second, time.Second, 5)
		if s := h.State(end); s != Up {
			t.Fatalf("without damping: %s, want Up", s)
		}
	})
}

func TestDampingValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		d    Damping
		want string
	}{
		"the default":           {DefaultDamping(), ""},
		"off":                   {Damping{}, ""},
		"negative half-life":    {Damping{HalfLife: -time.Second}, "--flap-half-life"},
		"reuse above suppress":  {Damping{HalfLife: time.Second, Suppress: 500, Reuse: 750, MaxSuppress: time.Minute}, "--flap-reuse 750, --flap-suppress 500"},
		"max below a half-life": {Damping{HalfLife: time.Minute, Suppress: 2000, Reuse: 750, MaxSuppress: time.Second}, "--flap-max-suppress"},
		"no reuse":              {Damping{HalfLife: time.Second, Suppress: 2000, MaxSuppress: time.Minute}, "--flap-reuse 0"},
	} {
		err := tc.d.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// A gateway never seen up that goes down, then comes back, did not flap:
// it is not damped.
func TestAGatewayNeverSeenUpDidNotFlap(t *testing.T) {
	p := Probe{Period: 200 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 3}
	var h Health
	end := flapFor(p, DefaultDamping(), &h, t0, time.Second, time.Second, 1)
	if s := h.State(end); s != Up || h.Penalty != FlapPenalty {
		t.Fatalf("down from the start, then up: %s with penalty %g, want Up with one change's", s, h.Penalty)
	}
	// While it is down, its first answer changes nothing yet.
	var d Health
	for range 3 {
		d.Observe(p, DefaultDamping(), false, 0, t0)
	}
	if d.Observe(p, DefaultDamping(), true, time.Millisecond, t0) || d.State(t0) != Down {
		t.Fatalf("down, one answer: %s, and a change reported", d.State(t0))
	}
}
