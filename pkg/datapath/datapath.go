// Package datapath writes a node's desired state (policy.Desired) to the
// kernel behind one door, Datapath.Apply: a dedicated routing table
// swapped blue/green behind one ip rule, nexthop objects that move a
// group in place, the health checks' probe tables, and an nftables table
// that marks what must not be steered. The planner (plan.go) is pure; the
// executor is thin.
package datapath

import (
	"errors"
	"fmt"

	"github.com/staticroute/staticroute/pkg/policy"
)

// Datapath is a node's datapath behind one door, as tailscale's
// Router.Set is: Apply takes a whole desired state and writes all of it —
// the steering routes, rules and nexthops, the probe tables, the old
// operator's routes it takes over, the firewall and src_valid_mark — in
// the one order that is safe. The reconciler says what, never in which
// order.
type Datapath struct {
	Routes   RouteWriter    // *Kernel
	Firewall FirewallWriter // *Firewall
	Marks    MarkWriter     // *ValidMarks
}

// RouteWriter writes the steering tables, rules, nexthops and probe
// tables (Kernel.Apply), and removes the old operator's routes.
type RouteWriter interface {
	Apply(policy.Desired) (Applied, error)
	RemoveLegacyRoutes(map[policy.LegacyRoute]bool) ([]policy.LegacyRoute, error)
	// Draining counts the connections that drain, per group (nil: none
	// drains).
	Draining(policy.Desired) (map[string]int, error)
}

// FirewallWriter writes the nftables table with the record of the links
// whose src_valid_mark was turned on, and reads the groups' counters.
type FirewallWriter interface {
	Apply(d policy.Desired, marked []int) (changed bool, err error)
	Counters() (map[string]Counter, error)
}

// MarkWriter reads which links need src_valid_mark and turns it on.
type MarkWriter interface {
	Read() (MarkPlan, error)
	TurnOn(MarkPlan) error
}

var (
	_ RouteWriter    = (*Kernel)(nil)
	_ FirewallWriter = (*Firewall)(nil)
	_ MarkWriter     = (*ValidMarks)(nil)
)

// Apply writes d, in this order, and stops at the first step that fails
// (the next Apply starts over; every step is idempotent):
//
//  1. the routes, rules and probe tables: the switch itself, first, so
//     that a change reaches the traffic before anything else is done;
//  2. the counters read, after the switch and before step 4 rewrites the
//     table that holds them;
//  3. the old operator's main-table routes that d takes over, only now
//     that our table steers their destinations: they never fall to main;
//  4. the firewall, with the record of the links whose src_valid_mark is
//     to be turned on; a record never read is never written, since it
//     would erase the table's;
//  5. src_valid_mark on those links, once the record holds them: a
//     router that dies in between still knows what to restore.
//
// Applied reports every step that ran, also when a later one failed.
func (p *Datapath) Apply(d policy.Desired) (Applied, error) {
	a, err := p.Routes.Apply(d)
	if err != nil {
		return a, err
	}
	a.Steered = true
	// Counters only feed metrics: a failed read is no failed apply.
	a.Traffic, _ = p.Firewall.Counters()
	if len(d.Legacy) > 0 {
		a.LegacyRemoved, err = p.Routes.RemoveLegacyRoutes(d.Legacy)
		if err != nil {
			return a, err
		}
	}
	// A failed read still writes the firewall, with the last record; not
	// before the record was ever read.
	marks, markErr := p.Marks.Read()
	if !marks.Known {
		return a, fmt.Errorf("reading the record of src_valid_mark: %w", markErr)
	}
	a.FirewallChanged, err = p.Firewall.Apply(d, marks.Record)
	if err != nil || markErr != nil {
		return a, errors.Join(err, markErr)
	}
	if err := p.Marks.TurnOn(marks); err != nil {
		return a, err
	}
	a.MarksTurnedOn = marks.TurnOn
	// Like the counters, for the node state only: once the firewall puts
	// the old connections in the draining lanes.
	a.Draining, _ = p.Routes.Draining(d)
	return a, nil
}
