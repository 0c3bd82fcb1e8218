package datapath

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/staticroute/staticroute/pkg/policy"
	"golang.org/x/sys/unix"
)

// family is one of the two kinds of slotted tables: the health checks'
// probes and the lanes of groups with several gateways. Each slot has a
// rule (its mark to its table), a table and a nexthop of its own.
type family uint8

const (
	probeFamily family = iota
	laneFamily
)

func (f family) String() string { return [...]string{"probe", "lane"}[f] }

// Nexthop ID blocks of the slots: 0x5f0000<slot> for probes and
// 0x5d0000<slot> for lanes, apart from the groups' (nexthopBase), so that
// no planner takes another's for stale.
const (
	probeNexthopBase = 0x5f000000
	laneNexthopBase  = 0x5d000000
)

func (f family) nexthopID(slot int) uint32 {
	if f == laneFamily {
		return laneNexthopBase | uint32(slot)
	}
	return probeNexthopBase | uint32(slot)
}

// familyOf is the family whose block id is in; false: a group's.
func familyOf(id uint32) (family, bool) {
	switch id & 0xff000000 {
	case probeNexthopBase:
		return probeFamily, true
	case laneNexthopBase:
		return laneFamily, true
	}
	return 0, false
}

// SlotsHeld is what the kernel holds of one family: the slots whose rule
// is in place, the routes of the slot tables read, by slot, and the
// family's nexthop objects by ID.
type SlotsHeld struct {
	Rules    []int
	Tables   map[int][]kroute
	Nexthops map[uint32]nexthop
}

// slotState is what the kernel should hold of one family.
type slotState struct {
	tables map[int][]kroute // by slot
	nhs    []nexthop
	// homes are the lanes' groups and own gateways, by slot (lanes only).
	homes map[int]laneHome
}

type laneHome struct {
	group   string
	gateway netip.Addr
}

// wantedProbes: per slot, a table with the route to the probe's target
// through the probe's own nexthop (its gateway on the VPC link) and,
// behind it, an unreachable default, so that a probe whose route is gone
// (the link went down) fails instead of falling through to the steering
// table or main.
func wantedProbes(ps []policy.Probe, link int, src [4]byte, proto uint8) slotState {
	s := slotState{tables: make(map[int][]kroute, len(ps))}
	for _, p := range ps {
		nh := nexthop{id: probeFamily.nexthopID(p.Slot), gateway: p.Gateway, link: link}
		s.nhs = append(s.nhs, nh)
		s.tables[p.Slot] = sortRoutes([]kroute{
			{dst: p.Target.As4(), bits: 32, typ: unix.RTN_UNICAST, proto: proto, nh: nh.id, src: src},
			{typ: unix.RTN_UNREACHABLE, proto: proto, metric: guardMetric},
		})
	}
	return s
}

// wantedLanes: per lane, a table whose default route goes through the
// lane's own nexthop (to Lane.To on the VPC link), and which throws the
// carve-outs: a connection of the lane to them, and the reverse path of
// a pod's packet that strict rp_filter checks with the packet's mark,
// fall through to the next rules, as they would without the lane.
func wantedLanes(d policy.Desired, link int, proto uint8) slotState {
	s := slotState{tables: make(map[int][]kroute, len(d.Lanes)), homes: make(map[int]laneHome, len(d.Lanes))}
	var throws []kroute
	for _, c := range d.CarveOuts {
		throws = append(throws, kroute{dst: c.Prefix.Addr().As4(), bits: uint8(c.Prefix.Bits()), typ: unix.RTN_THROW, proto: proto})
	}
	for _, l := range d.Lanes {
		nh := nexthop{id: laneFamily.nexthopID(l.Slot), gateway: l.To, link: link}
		s.nhs = append(s.nhs, nh)
		s.homes[l.Slot] = laneHome{group: l.Group, gateway: l.Gateway}
		rs := append(slices.Clone(throws), kroute{typ: unix.RTN_UNICAST, proto: proto, nh: nh.id, src: d.Src.As4()})
		s.tables[l.Slot] = sortRoutes(rs)
	}
	return s
}

// planSlots orders the operations that make the kernel, holding held,
// hold want for one family, with table giving each slot's table. What
// goes (rules, then tables, then nexthops) comes last, from Removals on:
// the lanes' additions and moves are made before the steering tables
// change and their removals after, so that a connection in a lane takes
// the steering table's path only once that path is the new one.
//
// A table is written before its rule is added, and emptied after its
// rule is gone: a probe table always ends in its unreachable default,
// and a lane table always holds its default route, so a rule never sends
// a packet past its table. A nexthop changed in place moves every packet
// of its slot at once: for a lane, that is the switch of its connections
// to another gateway, or home again. Before a lane goes home, its
// connections are relabelled to the lane of the gateway they left by
// (their conntrack mark), so that they stay where they are and only new
// connections take the gateway that came back.
func planSlots(f family, held SlotsHeld, want slotState, table func(int) int) Plan {
	p := Plan{Switch: -1}
	p.relabel(held, want)
	var changed []nexthop
	for _, nh := range want.nhs {
		cur, ok := held.Nexthops[nh.id]
		if ok && cur == nh {
			continue
		}
		if ok && cur.gateway != nh.gateway {
			p.Moved++
		}
		changed = append(changed, nh)
	}
	p.add(Op{kind: opReplaceNexthops, nexthops: changed})
	if p.Moved > 0 {
		p.Switch = len(p.Ops) - 1
	}
	slots := slices.Sorted(maps.Keys(want.tables))
	for _, slot := range slots {
		p.sync(table(slot), held.Tables[slot], want.tables[slot])
	}
	for _, slot := range slots {
		if !slices.Contains(held.Rules, slot) {
			p.add(Op{kind: opAddRule, fam: f, slot: slot})
		}
	}
	p.Removals = len(p.Ops)
	for _, slot := range held.Rules {
		if _, ok := want.tables[slot]; !ok {
			p.add(Op{kind: opDeleteRule, fam: f, slot: slot})
		}
	}
	for _, slot := range slices.Sorted(maps.Keys(held.Tables)) {
		if _, ok := want.tables[slot]; !ok {
			p.add(Op{kind: opDeleteRoutes, table: table(slot), routes: held.Tables[slot]})
		}
	}
	var stale []uint32
	for id := range held.Nexthops {
		if !slices.ContainsFunc(want.nhs, func(nh nexthop) bool { return nh.id == id }) {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	p.add(Op{kind: opDeleteNexthops, ids: stale})
	return p
}

// relabel plans, for each lane that comes home (its nexthop leads to
// another gateway and is to lead to its own), the move of its
// connections' mark to the lane of the gateway they leave by now, if
// that lane leads there now and after: their path stays the same. If
// not (that gateway is down, its lane moves too, or either lane's rule
// or route is gone and the connections take the steering table), they
// move anyway, and come home with their lane.
func (p *Plan) relabel(held SlotsHeld, want slotState) {
	to := map[int]netip.Addr{} // each wanted lane's gateway after the plan
	for _, nh := range want.nhs {
		to[int(nh.id&^laneNexthopBase)] = nh.gateway
	}
	for _, nh := range want.nhs {
		slot := int(nh.id &^ laneNexthopBase)
		home, isLane := want.homes[slot]
		cur, ok := held.Nexthops[nh.id]
		if !isLane || !ok || cur.gateway == nh.gateway || nh.gateway != home.gateway || !held.leads(slot) {
			continue
		}
		for other, h := range want.homes {
			now := held.Nexthops[laneFamily.nexthopID(other)]
			if h.group == home.group && h.gateway == cur.gateway && held.leads(other) && now.gateway == cur.gateway && to[other] == cur.gateway {
				p.add(Op{kind: opRelabel, slot: slot, to: other})
			}
		}
	}
}

// leads says the kernel sends lane slot's connections by its nexthop:
// its rule is in place and its table holds its default route.
func (h SlotsHeld) leads(slot int) bool {
	id := laneFamily.nexthopID(slot)
	_, ok := h.Nexthops[id]
	return ok && slices.Contains(h.Rules, slot) &&
		slices.ContainsFunc(h.Tables[slot], func(r kroute) bool { return r.bits == 0 && r.nh == id })
}
