package group

import (
	"fmt"
	"math"
	"time"
)

// Damping is route-flap damping for gateways, after BGP's (RFC 2439):
// every change of a path's health, down or back up, adds FlapPenalty to a
// penalty that halves every HalfLife. A path whose penalty rises above
// Suppress is damped: while it is up it carries a group only when no
// other member is up, until the penalty has decayed below Reuse. The
// penalty never exceeds what decays to Reuse within MaxSuppress, so a
// gateway that has stopped flapping is released within MaxSuppress.
//
// A down and its return are two changes: with the defaults, a gateway
// whose return is seen within 1.6 s of its going down (a link that flaps
// every second) has a penalty over Suppress and is held for about 7 s,
// while the group stays on the member that did not flap; each further
// flap holds it longer (17 s after a minute of 1 s flaps). A gateway down
// for longer is taken back as soon as it answers again, and one that
// went down once in a while is never held. A flap costs the traffic while
// the gateway is going down (the detection window), never while it is
// held.
type Damping struct {
	// HalfLife is how long the penalty takes to halve; 0 turns damping
	// off.
	HalfLife time.Duration
	// Suppress and Reuse are the penalties above which a path is damped
	// and below which it is released.
	Suppress, Reuse float64
	// MaxSuppress bounds how long a path stays damped after its last
	// change.
	MaxSuppress time.Duration
}

// FlapPenalty is what one change of health costs.
const FlapPenalty = 1000

// DefaultDamping is the node router's default.
func DefaultDamping() Damping {
	return Damping{HalfLife: 5 * time.Second, Suppress: 1800, Reuse: 750, MaxSuppress: 60 * time.Second}
}

// Validate says what is wrong with d, naming the flags that set it.
func (d Damping) Validate() error {
	switch {
	case d.HalfLife < 0:
		return fmt.Errorf("--flap-half-life %s: must be 0 (no damping) or positive", d.HalfLife)
	case d.HalfLife == 0:
		return nil
	case d.Reuse <= 0 || d.Suppress <= d.Reuse:
		return fmt.Errorf("--flap-reuse %g, --flap-suppress %g: want 0 < reuse < suppress", d.Reuse, d.Suppress)
	case d.MaxSuppress < d.HalfLife:
		return fmt.Errorf("--flap-max-suppress %s: want at least --flap-half-life %s", d.MaxSuppress, d.HalfLife)
	}
	return nil
}

// decayed is the penalty p, as of at, at now.
func (d Damping) decayed(p float64, at, now time.Time) float64 {
	if p == 0 || !now.After(at) {
		return p
	}
	return p * math.Exp2(-float64(now.Sub(at))/float64(d.HalfLife))
}

// penalize adds a change's penalty to h at now and damps h when it is
// over Suppress, or still damped.
func (d Damping) penalize(h *Health, now time.Time) {
	if d.HalfLife <= 0 {
		return
	}
	ceiling := d.Reuse * math.Exp2(float64(d.MaxSuppress)/float64(d.HalfLife))
	p := min(d.decayed(h.Penalty, h.PenaltyAt, now)+FlapPenalty, ceiling)
	h.Penalty, h.PenaltyAt = p, now
	if p > d.Suppress || now.Before(h.DampedUntil) {
		// The time the penalty takes to decay to Reuse.
		h.DampedUntil = now.Add(time.Duration(float64(d.HalfLife) * math.Log2(p/d.Reuse)))
	}
}
