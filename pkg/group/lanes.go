package group

import (
	"fmt"
	"net/netip"
)

// Lane is one gateway of a member with several (spec.gateways) as the
// member's carrying node sees it. New connections are spread over the
// open lanes, one lane per connection for its life; every connection of
// a lane leaves via To.
type Lane struct {
	// Gateway is the lane's own gateway, in the member's order.
	Gateway netip.Addr
	State   State
	// Open: new connections may take this lane.
	Open bool
	// To is where the lane's connections leave now: its own gateway, or,
	// while that is down, the next open lane's (in the member's order,
	// from the lane on, round the end): only the dead gateway's
	// connections move, and all to one place, so that each keeps one
	// public address from then on.
	To netip.Addr
}

func (l Lane) String() string {
	s := fmt.Sprintf("%s %s", l.Gateway, l.State)
	if l.Open {
		s += " open"
	}
	if l.To != l.Gateway {
		s += " away to " + l.To.String()
	}
	return s
}

// Away says the lane's connections leave by another gateway than its own.
func (l Lane) Away() bool { return l.To != l.Gateway }

// Lanes decides a member's lanes from its gateways' states on this node
// (in the member's order) and where each lane leaves now (held, by
// gateway; missing: nowhere yet).
//
// New connections take the Up gateways; if none is up, the Damped ones;
// if none, the Pending ones whose lanes are home (after a restart, the
// kernel's choice stands until the probes decide); if none, every one:
// the member fails closed through its own gateways, never the node's
// address.
//
// A lane stays home while its gateway is anything but Down, and a
// Pending lane that is away stays away (its gateway has not proven
// itself yet) unless where it went is down. A Down lane goes to the
// next open lane's gateway; with no open lane but itself it stays home.
func Lanes(gws []netip.Addr, states []State, held map[netip.Addr]netip.Addr) []Lane {
	lanes := make([]Lane, len(gws))
	for i, gw := range gws {
		lanes[i] = Lane{Gateway: gw, State: states[i], To: gw}
	}
	home := func(l Lane) bool { to, ok := held[l.Gateway]; return !ok || to == l.Gateway }
	for _, open := range []func(Lane) bool{
		func(l Lane) bool { return l.State == Up },
		func(l Lane) bool { return l.State == Damped },
		func(l Lane) bool { return l.State == Pending && home(l) },
		func(Lane) bool { return true },
	} {
		n := 0
		for i := range lanes {
			lanes[i].Open = open(lanes[i])
			if lanes[i].Open {
				n++
			}
		}
		if n > 0 {
			break
		}
	}
	down := func(gw netip.Addr) bool {
		for _, l := range lanes {
			if l.Gateway == gw {
				return l.State == Down
			}
		}
		return true // not a gateway of this member
	}
	for i, l := range lanes {
		switch {
		case l.Open:
		case l.State == Pending && !home(l) && !down(held[l.Gateway]):
			lanes[i].To = held[l.Gateway]
		case l.State == Down:
			for k := 1; k < len(lanes); k++ {
				if next := lanes[(i+k)%len(lanes)]; next.Open {
					lanes[i].To = next.Gateway
					break
				}
			}
		}
	}
	return lanes
}

// Best is a member's state from its gateways': Up if one is up, then
// Damped, Pending, Down (Rank's order). A member is only as dead as its
// last gateway.
func Best(states []State) State {
	best := Down
	for _, s := range states {
		if Rank(s, false) > Rank(best, false) {
			best = s
		}
	}
	return best
}
