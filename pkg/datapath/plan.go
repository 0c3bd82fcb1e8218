package datapath

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Held is what the kernel holds of ours: the planner's input, read by the
// executor (or remembered from its last Apply).
type Held struct {
	// Rules are the tables our steering rules point at, in the kernel's
	// order: the first answers first, so it is the active one.
	Rules []int
	// MarkRule: the rule that sends marked packets to main is in place.
	MarkRule bool
	// Tables holds each steering table's routes, sorted.
	Tables map[int][]kroute
	// Nexthops are the groups' nexthop objects by ID.
	Nexthops map[uint32]nexthop

	// Probes and Lanes are what the kernel holds of the health checks'
	// slots and of the lanes'.
	Probes, Lanes SlotsHeld
}

// slots is what h holds of family f.
func (h *Held) slots(f family) *SlotsHeld {
	if f == laneFamily {
		return &h.Lanes
	}
	return &h.Probes
}

// opKind is what one step of a plan does to the kernel.
type opKind uint8

const (
	opReplaceNexthops opKind = iota // create or replace nexthops
	opWriteRoutes                   // add or replace routes in a table
	opDeleteRoutes                  // delete routes from a table
	opAddRule                       // add the steering rule for a table
	opDeleteRule                    // delete the steering rule for a table
	opDeleteNexthops                // delete nexthops (and any route using one)
	opAddMarkRule                   // add the rule for marked packets
	opRelabel                       // move a lane's connections to another lane's mark
)

// Op is one step of a plan: one netlink batch.
type Op struct {
	kind     opKind
	table    int
	fam      family // a slot rule's family
	slot     int    // a slot rule's slot (0: the steering rule); opRelabel: from
	to       int    // opRelabel: the lane whose mark the connections take
	routes   []kroute
	nexthops []nexthop
	ids      []uint32
}

func (o Op) String() string {
	switch o.kind {
	case opReplaceNexthops:
		parts := make([]string, len(o.nexthops))
		for i, nh := range o.nexthops {
			parts[i] = nh.String()
		}
		return "replace nexthops " + strings.Join(parts, ", ")
	case opWriteRoutes:
		return fmt.Sprintf("write into table %d: %s", o.table, routeList(o.routes))
	case opDeleteRoutes:
		return fmt.Sprintf("delete from table %d: %s", o.table, routeList(o.routes))
	case opAddRule:
		return "add " + ruleName(o)
	case opDeleteRule:
		return "delete " + ruleName(o)
	case opRelabel:
		return fmt.Sprintf("move the connections of lane %d to lane %d", o.slot, o.to)
	case opDeleteNexthops:
		parts := make([]string, len(o.ids))
		for i, id := range o.ids {
			parts[i] = fmt.Sprintf("%#x", id)
		}
		return "delete nexthops " + strings.Join(parts, ", ")
	case opAddMarkRule:
		return "add the mark rule"
	}
	return fmt.Sprintf("op %d", o.kind)
}

func routeList(rs []kroute) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

func (r kroute) String() string {
	var b strings.Builder
	switch r.typ {
	case unix.RTN_THROW:
		b.WriteString("throw ")
	case unix.RTN_UNREACHABLE:
		b.WriteString("unreachable ")
	}
	b.WriteString(r.prefix().String())
	if r.nh != 0 {
		fmt.Fprintf(&b, " nhid %#x src %s", r.nh, netip.AddrFrom4(r.src))
	}
	if r.metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.metric)
	}
	return b.String()
}

func (nh nexthop) String() string {
	return fmt.Sprintf("%#x via %s dev %d", nh.id, nh.gateway, nh.link)
}

// Plan is the ordered list of operations that takes the kernel from what
// it holds to a desired state, and what it will have done.
type Plan struct {
	Ops []Op
	// Switch is the index of the operation that moves traffic to the new
	// state (the old rule's delete, or the nexthop replace of an in-place
	// failover); -1 if traffic keeps its path.
	Switch int
	// Swapped: a table other than the one that answered is switched in.
	Swapped bool
	Table   int // the table that answers afterwards
	Routes  int // routes in it
	Moved   int // groups whose gateway changes in place
	// Removals is where a slot family's plan (planSlots) starts removing
	// what is no longer wanted.
	Removals int
}

func (p Plan) String() string {
	var b strings.Builder
	for i, o := range p.Ops {
		b.WriteString(o.String())
		if i == p.Switch {
			b.WriteString("  <- the switch")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (p *Plan) add(o Op) {
	if len(o.routes) == 0 && len(o.nexthops) == 0 && len(o.ids) == 0 &&
		o.kind != opAddRule && o.kind != opDeleteRule && o.kind != opAddMarkRule && o.kind != opRelabel {
		return
	}
	p.Ops = append(p.Ops, o)
}

// sync makes a table that does not answer, holding have, hold want.
func (p *Plan) sync(table int, have, want []kroute) {
	c := diff(have, want)
	p.add(Op{kind: opDeleteRoutes, table: table, routes: c.clear})
	p.add(Op{kind: opWriteRoutes, table: table, routes: c.write})
	p.add(Op{kind: opDeleteRoutes, table: table, routes: c.del})
}

// plan orders the operations that make the kernel, holding held, steer by
// want (sorted routes) through the nexthops nhs, with tables as the two
// steering tables. It is pure: the order is the whole safety argument, and
// the planner's tests check it without a kernel.
//
// A change is made in a table that does not answer until that table holds
// the whole new state; its rule is added behind the answering one at the
// same priority; then deleting the answering rule — one netlink message —
// switches every lookup to the complete new table at once. Last, the other
// table is brought to the same state: it stays a copy, so that the next
// change writes only what changes. At no instant does a steered
// destination miss both tables and fall through to main. A group whose
// gateway alone changes moves in place (nexthop replace), every route of
// it at once, without a swap.
func plan(held Held, want []kroute, nhs []nexthop, tables [2]int) Plan {
	p := Plan{Switch: -1, Routes: len(want)}
	p.replaceNexthops(held, nhs)
	other := func(t int) int {
		if t == tables[0] {
			return tables[1]
		}
		return tables[0]
	}
	active := 0
	if len(held.Rules) > 0 {
		// After a crash between adding the new rule and deleting the old
		// one, the first rule listed still answers first: it is active.
		active = held.Rules[0]
	}
	if active != 0 && slices.Equal(held.Tables[active], want) {
		// The answering table is right: rules behind it (a half-done swap)
		// go, which changes no lookup, and the other table is synced.
		p.Table = active
		for _, t := range held.Rules[1:] {
			p.add(Op{kind: opDeleteRule, table: t})
		}
		p.sync(other(active), held.Tables[other(active)], want)
	} else {
		target := other(active)
		p.swap(held, want, active, target)
		p.sync(other(target), held.Tables[other(target)], want)
	}
	// Deleting a nexthop deletes the routes that use it: only once no
	// table holds them.
	var stale []uint32
	for id := range held.Nexthops {
		if !slices.ContainsFunc(nhs, func(nh nexthop) bool { return nh.id == id }) {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	p.add(Op{kind: opDeleteNexthops, ids: stale})
	if !held.MarkRule {
		p.add(Op{kind: opAddMarkRule})
	}
	return p
}

// replaceNexthops writes the nexthops that are new or changed. They go
// first: routes name them, and the kernel refuses a route whose nexthop
// does not exist. A changed one moves its group in place: the switch.
func (p *Plan) replaceNexthops(held Held, nhs []nexthop) {
	var changed []nexthop
	for _, nh := range nhs {
		cur, ok := held.Nexthops[nh.id]
		if ok && cur.gateway == nh.gateway && cur.link == nh.link {
			continue
		}
		if ok {
			p.Moved++
		}
		changed = append(changed, nh)
	}
	p.add(Op{kind: opReplaceNexthops, nexthops: changed})
	if p.Moved > 0 {
		p.Switch = len(p.Ops) - 1
	}
}

// swap brings target, which does not answer, to want, and switches to
// it: its rule added behind the answering one, then the answering rule
// deleted.
func (p *Plan) swap(held Held, want []kroute, active, target int) {
	p.Swapped, p.Table = true, target
	// Only what is new or different goes in before the switch. Routes
	// that go are deleted after it, each delete atomic: a destination
	// leaving the steering keeps its old path a few milliseconds longer,
	// never shorter, and a failover to other destinations does not wait
	// for the old ones to be deleted.
	c := diff(held.Tables[target], want)
	p.add(Op{kind: opDeleteRoutes, table: target, routes: c.clear})
	switch {
	case slices.Contains(held.Rules, target):
		// A crash mid-swap left the target's rule behind the answering
		// one: what the answering table does not steer, the target does
		// already, and a delete now could send it to main. Only throws go
		// now: one left over would send a steered destination to main
		// after the switch. The rest goes after it, and may answer with
		// the path of an earlier state until then; never with the node's
		// own address.
		throws := slices.DeleteFunc(slices.Clone(c.del), func(r kroute) bool { return r.typ != unix.RTN_THROW })
		p.add(Op{kind: opDeleteRoutes, table: target, routes: throws})
		c.del = slices.DeleteFunc(c.del, func(r kroute) bool { return r.typ == unix.RTN_THROW })
	case !slices.Equal(held.Tables[target], held.Tables[active]):
		// The target answers nothing and is not a copy of the answering
		// table (drift): a route of it that is not wanted could answer
		// after the switch with a path of neither state, so it goes now.
		p.add(Op{kind: opDeleteRoutes, table: target, routes: c.del})
		c.del = nil
	}
	p.add(Op{kind: opWriteRoutes, table: target, routes: c.write})
	if !slices.Contains(held.Rules, target) {
		p.add(Op{kind: opAddRule, table: target})
		p.Switch = len(p.Ops) - 1 // if no rule answered before
	}
	for _, t := range held.Rules {
		if t != target {
			p.add(Op{kind: opDeleteRule, table: t})
			if t == active {
				p.Switch = len(p.Ops) - 1
			}
		}
	}
	p.add(Op{kind: opDeleteRoutes, table: target, routes: c.del})
}
