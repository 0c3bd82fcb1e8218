package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Kernel applies desired states to one network namespace through a netlink
// handle bound to it. Every write is idempotent: "exists" on add and "not
// found" on delete are success.
type Kernel struct {
	NL   *netlink.Handle
	Opts policy.Options
	// Conntrack moves a lane's connections to another lane's mark.
	Conntrack ConnMarks
	batch     *batcher
	// port is the batcher's socket's netlink port: every change Apply
	// makes goes through it (see Ours).
	port uint32

	// FullCheck bounds how long Apply trusts its memory of what it wrote:
	// past it, the routes are dumped and compared again even if nothing
	// invalidated them.
	FullCheck time.Duration

	mu       sync.Mutex
	known    *written  // what the last successful Apply left; nil: dump
	verified time.Time // when the kernel was last dumped
	// invalidated counts Invalidate calls: an Apply remembers what it
	// wrote only if none came while it ran, so that a route event racing
	// an Apply is not forgotten.
	invalidated uint64

	// afterSwitch, if set, runs right after the switch (tests: an event
	// that arrives in the middle of an Apply).
	afterSwitch func()
}

// written is what Apply left in the kernel: both tables hold routes, the
// nexthops are nhs, and the slot tables and nexthops of the probes and
// the lanes are slots.
type written struct {
	routes []kroute
	nhs    []nexthop
	slots  [2]slotState
}

// slotTable is what was written into a slot's table, if known.
func (w *written) slotTable(f family, slot int) ([]kroute, bool) {
	if w == nil {
		return nil, false
	}
	rs, ok := w.slots[f].tables[slot]
	return rs, ok
}

// Invalidate makes the next Apply compare with the kernel's routes: call
// it on a route event in our tables (someone flushed or edited them).
func (k *Kernel) Invalidate() {
	k.mu.Lock()
	k.known = nil
	k.invalidated++
	k.mu.Unlock()
}

// NewKernel opens netlink handles in the namespace ns (netns.None(): the
// caller's own). Close releases them.
func NewKernel(ns netns.NsHandle, opts policy.Options) (*Kernel, error) {
	var h *netlink.Handle
	var err error
	if ns == netns.None() {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	// Its receives are bounded as the batcher's are: a kernel that does
	// not answer fails the reconcile instead of wedging it.
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	conn := newSockConn(sock)
	port, err := conn.port()
	if err != nil {
		h.Close()
		conn.Close()
		return nil, fmt.Errorf("netlink: our socket's port: %w", err)
	}
	ct, err := NewConntrack(ns)
	if err != nil {
		h.Close()
		conn.Close()
		return nil, err
	}
	return &Kernel{NL: h, Opts: opts, Conntrack: ct, batch: newBatcher(conn), port: port, FullCheck: 10 * time.Second}, nil
}

// Ours says whether a kernel event with this netlink port is the echo of
// a change of ours (WatchKernel's ours): every rule, route and nexthop
// Apply writes or deletes, and the old operator's routes it removes, go
// through one socket. NL only reads the links and their addresses.
func (k *Kernel) Ours(port uint32) bool { return port != 0 && port == k.port }

// Close releases the netlink sockets.
func (k *Kernel) Close() {
	k.NL.Close()
	k.batch.conn.Close()
	k.Conntrack.Close()
}

// Applied says what one Apply did.
type Applied struct {
	Swapped bool // a new table was switched in
	Table   int  // the active table afterwards
	Routes  int  // routes in it
	// Moved counts groups whose gateway changed in place (nexthop
	// replace): a failover that keeps the destinations.
	Moved int
	// ToSwitch is the time from the start of Apply to the switch (the rule
	// swap, or the nexthop replace when nothing else changed): what a
	// change takes to reach the traffic.
	ToSwitch time.Duration

	// What Datapath.Apply adds: Steered, the routes and rules are as
	// desired (the traffic took the new path, whatever failed after);
	// Traffic, each group's counter read after the switch (nil if it could
	// not be read); the old operator's routes removed; whether the
	// firewall's table was rewritten (its counters start again); the
	// links whose src_valid_mark was turned on.
	Steered         bool
	Traffic         map[string]Counter
	Draining        map[string]int // connections draining, per group
	LegacyRemoved   []policy.LegacyRoute
	FirewallChanged bool
	MarksTurnedOn   []int
}

// Apply makes the kernel's steering match d: it reads what the kernel
// holds (or trusts its memory of what it last wrote), plans the steps
// (plan and planSlots, which say why the order is safe) and performs
// them. An error after the switch still reports the switch.
//
// The lanes' additions and moves go first, before the steering tables
// are even computed: a dead gateway's lane moves without waiting for the
// work that 10,000 routes take. Then the steering tables, then what the
// lanes no longer need, then the probes.
func (k *Kernel) Apply(d policy.Desired) (Applied, error) {
	start := time.Now()
	link, err := k.vpcLink(d)
	if err != nil {
		return Applied{}, err
	}
	k.mu.Lock()
	known := k.known
	trusted := known != nil && time.Since(k.verified) < k.FullCheck
	generation := k.invalidated
	k.mu.Unlock()
	proto := uint8(k.Opts.Protocol)
	w := written{slots: [2]slotState{probeFamily: wantedProbes(d.Probes, link, d.Src.As4(), proto), laneFamily: wantedLanes(d, link, proto)}}
	var ids map[string]uint32
	w.nhs, ids = groupNexthops(d, link)
	held, err := k.readSlots(known, trusted, w)
	if err != nil {
		return Applied{}, err
	}
	lp := planSlots(laneFamily, held.Lanes, w.slots[laneFamily], k.Opts.LaneTable)
	adds, removals := lp, lp
	adds.Ops, removals.Ops, removals.Switch = lp.Ops[:lp.Removals], lp.Ops[lp.Removals:], -1
	var a Applied
	done, toSwitch, err := k.execute(adds, start)
	if lp.Switch >= 0 && done > lp.Switch {
		a.Moved, a.ToSwitch = lp.Moved, toSwitch
	}
	dumped := false
	if err == nil {
		w.routes = wantedRoutes(d, ids, proto)
		dumped, err = k.applyTables(&a, held, known, trusted, w, start)
	}
	if err == nil {
		_, _, err = k.execute(removals, start)
	}
	if err == nil {
		_, _, err = k.execute(planSlots(probeFamily, held.Probes, w.slots[probeFamily], k.Opts.ProbeTable), start)
	}
	k.mu.Lock()
	k.known = nil
	// An Invalidate while this Apply ran: what it wrote may be gone
	// already, so the next Apply dumps.
	if err == nil && k.invalidated == generation {
		k.known = &w
		if dumped {
			k.verified = time.Now()
		}
	}
	k.mu.Unlock()
	return a, err
}

// applyTables brings the steering tables to w, and says in a what it
// did, and whether it read them from the kernel.
func (k *Kernel) applyTables(a *Applied, held Held, known *written, trusted bool, w written, start time.Time) (dumped bool, _ error) {
	dumped, err := k.readTables(&held, known, trusted)
	if err != nil {
		return false, err
	}
	p := plan(held, w.routes, w.nhs, k.Opts.Tables)
	done, toSwitch, err := k.execute(p, start)
	a.Routes, a.Table = p.Routes, p.Table
	if p.Switch >= 0 && done > p.Switch {
		a.Swapped, a.Moved, a.ToSwitch = p.Swapped, a.Moved+p.Moved, toSwitch
	} else if len(held.Rules) > 0 {
		a.Table = held.Rules[0]
	}
	return dumped, err
}

// vpcLink is the index of d's VPC link (0 if nothing needs it).
func (k *Kernel) vpcLink(d policy.Desired) (int, error) {
	if len(d.Probes) == 0 && len(d.Lanes) == 0 && !slices.ContainsFunc(d.Routes, func(r policy.Route) bool { return r.Kind == policy.Via }) {
		return 0, nil
	}
	l, err := k.NL.LinkByName(d.Link)
	if err != nil {
		return 0, fmt.Errorf("VPC link %q: %w", d.Link, err)
	}
	return l.Attrs().Index, nil
}

// write adds rs to table, each replacing a route of the same destination
// and metric if there is one.
func (k *Kernel) write(table int, rs []kroute) error {
	if err := k.batch.routes(unix.RTM_NEWROUTE, table, rs); err != nil {
		return fmt.Errorf("writing %d routes into table %d: %w", len(rs), table, err)
	}
	return nil
}

// delete removes rs from table. Each delete names the whole route. The
// kernel reads metric 0 as "the first of any metric": diff never deletes a
// destination and metric that a wanted route holds, and our only routes of
// another metric (guards) come with a wanted route of metric 0 for their
// destination, so a delete never reaches one.
func (k *Kernel) delete(table int, rs []kroute) error {
	if err := k.batch.routes(unix.RTM_DELROUTE, table, rs); err != nil {
		return fmt.Errorf("deleting %d routes from table %d: %w", len(rs), table, err)
	}
	return nil
}

// Active returns the table the steering rule points at, 0 if none.
func (k *Kernel) Active() (int, error) {
	held, err := k.readRules()
	if err != nil || len(held.Rules) == 0 {
		return 0, err
	}
	return held.Rules[0], nil
}

// Cleanup removes every rule and route of ours, and nothing else.
func (k *Kernel) Cleanup() error {
	k.Invalidate()
	var errs []error
	held, err := k.readRules()
	errs = append(errs, err)
	ours := []ruleSpec{k.markRule()}
	for _, t := range held.Rules {
		ours = append(ours, k.rule(t))
	}
	for slot := 1; slot <= policy.MaxProbes; slot++ {
		ours = append(ours, k.slotRule(probeFamily, slot))
	}
	for slot := 1; slot <= policy.MaxLanes+1; slot++ {
		ours = append(ours, k.slotRule(laneFamily, slot))
	}
	if err := k.batch.rules(unix.RTM_DELRULE, ours...); err != nil {
		errs = append(errs, fmt.Errorf("deleting our rules: %w", err))
	}
	for _, t := range k.Opts.Tables {
		errs = append(errs, k.flush(t))
	}
	for slot := 1; slot <= policy.MaxProbes; slot++ {
		errs = append(errs, k.flush(k.Opts.ProbeTable(slot)))
	}
	for slot := 1; slot <= policy.MaxLanes+1; slot++ {
		errs = append(errs, k.flush(k.Opts.LaneTable(slot)))
	}
	nhs, err := k.batch.listNexthops(k.Opts.Protocol)
	errs = append(errs, err)
	var ids []uint32
	for id := range nhs {
		ids = append(ids, id)
	}
	errs = append(errs, k.batch.deleteNexthops(ids))
	return errors.Join(errs...)
}

func (k *Kernel) rule(table int) ruleSpec {
	return ruleSpec{priority: k.Opts.Priority, table: table}
}

// slotRule is the rule of a probe's or a lane's slot: its mark to its
// table.
func (k *Kernel) slotRule(f family, slot int) ruleSpec {
	if f == laneFamily {
		mask := k.Opts.LaneMask()
		return ruleSpec{priority: k.Opts.LanePriority, table: k.Opts.LaneTable(slot), mark: k.Opts.LaneMark(slot), mask: &mask}
	}
	mask := k.Opts.ProbeMask()
	return ruleSpec{priority: k.Opts.ProbePriority, table: k.Opts.ProbeTable(slot), mark: k.Opts.ProbeMark(slot), mask: &mask}
}

// slotTable is the table of a probe's or a lane's slot.
func (k *Kernel) slotTable(f family, slot int) int {
	if f == laneFamily {
		return k.Opts.LaneTable(slot)
	}
	return k.Opts.ProbeTable(slot)
}

func (k *Kernel) markRule() ruleSpec {
	mask := k.Opts.Mark
	return ruleSpec{priority: k.Opts.MarkPriority, table: unix.RT_TABLE_MAIN, mark: k.Opts.Mark, mask: &mask}
}

func (k *Kernel) flush(table int) error {
	rs, err := k.batch.dumpRoutes(table)
	if err != nil {
		return err
	}
	if err := k.batch.routes(unix.RTM_DELROUTE, table, rs); err != nil {
		return fmt.Errorf("flushing table %d: %w", table, err)
	}
	return nil
}

// isGone says a delete found nothing to delete (a rule, route or nexthop
// that is already gone), which counts as done.
func isGone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

// Carried reads, in one dump of the nexthops, which gateway each of
// groups takes now and where each lane leads, by slot: after a restart,
// what the router before it chose. A group without a nexthop of ours
// (none written yet, or unreachable) is left out.
func (k *Kernel) Carried(groups []string) (map[string]netip.Addr, map[int]netip.Addr, error) {
	nhs, err := k.batch.listNexthops(k.Opts.Protocol)
	if err != nil {
		return nil, nil, err
	}
	carried := map[string]netip.Addr{}
	for g, id := range nexthopIDs(groups) {
		if nh, ok := nhs[id]; ok && nh.gateway.IsValid() {
			carried[g] = nh.gateway
		}
	}
	lanes := map[int]netip.Addr{}
	for id, nh := range nhs {
		if f, ok := familyOf(id); ok && f == laneFamily && nh.gateway.IsValid() {
			lanes[int(id&^laneNexthopBase)] = nh.gateway
		}
	}
	return carried, lanes, nil
}

// Draining counts, per group with a drain, the connections in the
// draining member's lanes: those that keep its gateways until they end
// or the drain does.
func (k *Kernel) Draining(d policy.Desired) (map[string]int, error) {
	var out map[string]int
	for _, g := range d.Groups {
		if g.Drain == nil {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		for _, l := range g.Lanes {
			if !l.Draining {
				continue
			}
			n, err := k.Conntrack.Count(k.Opts.LaneMark(l.Slot), k.Opts.LaneMask())
			if err != nil {
				return out, err
			}
			out[g.Name] += n
		}
	}
	return out, nil
}
