package group

import "time"

// State is what a node makes of a probe path's health when it chooses a
// group's member.
type State int

// States. The zero value is Pending: a checked member whose path has no
// health yet (its prober is not even started) is not known to be up.
const (
	// Pending: no probe through the path has been answered yet. A pending
	// member does not take traffic over; it keeps carrying what it
	// carries already (a restarted router keeps the kernel's choice until
	// its probes decide).
	Pending State = iota
	// Up: answered (and not damped).
	Up
	// Down: FailureThreshold probes lost in a row.
	Down
	// Damped: up, but it flapped: held down until its penalty decays
	// (Damping). It carries a group only when no member is up.
	Damped
)

func (s State) String() string {
	return [...]string{"Pending", "Up", "Down", "Damped"}[s]
}

// Health is what a node knows of one probe's path from its results: up or
// down with hysteresis, whether a probe was ever answered, and the flap
// damping penalty of its changes.
type Health struct {
	Down bool
	// Answered says a probe through the path has been answered since it
	// was first probed: until then the path is Pending.
	Answered bool
	// Since is when Down last changed (zero: never).
	Since time.Time
	// RTT is the last answered probe's round trip.
	RTT time.Duration
	// Results counts the probes folded in.
	Results int
	// Flaps counts the changes of Down.
	Flaps int
	// Penalty is the flap penalty as of PenaltyAt; it decays with
	// Damping.HalfLife.
	Penalty   float64
	PenaltyAt time.Time
	// DampedUntil is when the penalty will have decayed to Damping.Reuse,
	// if the path flapped enough to be suppressed; zero or past: not
	// damped.
	DampedUntil time.Time
	// run is how many results in a row agree with the last one; last
	// says whether it was answered.
	run  int
	last bool
}

// Observe folds one probe result in, answered or lost, and says whether
// the path's State may have changed: down after p.FailureThreshold lost in
// a row, up after p.SuccessThreshold answered in a row, and out of
// Pending at the first answer. A gateway that flaps faster than a
// threshold's run of probes never changes; one that changes health often
// is damped (d).
func (h *Health) Observe(p Probe, d Damping, answered bool, rtt time.Duration, now time.Time) bool {
	h.Results++
	if answered {
		h.RTT = rtt
	}
	if h.Results == 1 || answered != h.last {
		h.run = 0
	}
	h.run++
	h.last = answered
	known := h.Answered
	if answered {
		h.Answered = true
	}
	switch {
	case h.Down && answered && h.run >= p.SuccessThreshold,
		!h.Down && !answered && h.run >= p.FailureThreshold:
		h.Down = !h.Down
		h.Since = now
		h.Flaps++
		// A gateway never seen up that goes down did not flap.
		if known {
			d.penalize(h, now)
		}
		return true
	}
	// The first answer of a pending path makes it Up.
	return answered && !known && !h.Down
}

// State is the path's state at now.
func (h Health) State(now time.Time) State {
	switch {
	case h.Down:
		return Down
	case !h.Answered:
		return Pending
	case now.Before(h.DampedUntil):
		return Damped
	}
	return Up
}
