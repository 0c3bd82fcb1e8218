package group

import "time"

// Health is what a node knows of one probe's path from its results: up or
// down, with hysteresis. A gateway that was never probed, or not enough
// to decide, is up: a new member carries its group at once, as without
// health checks, and is taken down only by probes it lost.
type Health struct {
	Down bool
	// Since is when Down last changed (zero: never).
	Since time.Time
	// RTT is the last answered probe's round trip.
	RTT time.Duration
	// Results counts the probes folded in.
	Results int
	// run is how many results in a row agree with the last one; last
	// says whether it was answered.
	run  int
	last bool
}

// Observe folds one probe result in, answered or lost, and says whether
// the health changed: down after p.FailureThreshold lost in a row, up
// after p.SuccessThreshold answered in a row. A gateway that flaps faster
// than a threshold's run of probes never changes.
func (h *Health) Observe(p Probe, answered bool, rtt time.Duration, now time.Time) bool {
	h.Results++
	if answered {
		h.RTT = rtt
	}
	if h.Results == 1 || answered != h.last {
		h.run = 0
	}
	h.run++
	h.last = answered
	switch {
	case h.Down && answered && h.run >= p.SuccessThreshold,
		!h.Down && !answered && h.run >= p.FailureThreshold:
		h.Down = !h.Down
		h.Since = now
		return true
	}
	return false
}
