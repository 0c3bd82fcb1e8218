package datapath

import (
	"maps"
	"slices"

	"github.com/staticroute/staticroute/pkg/policy"
	"golang.org/x/sys/unix"
)

// probeNexthopBase is the ID block of the probes' nexthops: 0x5f0000<slot>,
// apart from the groups' (nexthopBase), so that neither planner takes the
// other's for stale.
const probeNexthopBase = 0x5f000000

func isProbeNexthop(id uint32) bool { return id&0xff000000 == probeNexthopBase }

// probeState is what the kernel holds for the health checks: per slot, a
// table with the route to the probe's target through the probe's own
// nexthop (its gateway on the VPC link) and, behind it, an unreachable
// default, so that a probe whose route is gone (the link went down) fails
// instead of falling through to the steering table or main.
type probeState struct {
	tables map[int][]kroute // by slot
	nhs    []nexthop
}

func wantedProbes(ps []policy.Probe, link int, src [4]byte, proto uint8) probeState {
	s := probeState{tables: make(map[int][]kroute, len(ps))}
	for _, p := range ps {
		nh := nexthop{id: probeNexthopBase | uint32(p.Slot), gateway: p.Gateway, link: link}
		s.nhs = append(s.nhs, nh)
		s.tables[p.Slot] = sortRoutes([]kroute{
			{dst: p.Target.As4(), bits: 32, typ: unix.RTN_UNICAST, proto: proto, nh: nh.id, src: src},
			{typ: unix.RTN_UNREACHABLE, proto: proto, metric: guardMetric},
		})
	}
	return s
}

// planProbes orders the operations that make the kernel, holding held,
// hold the probes' want. No switch is at stake: a probe table always ends
// in its unreachable default, so a rule never sends a probe past it, and
// a route changed in place changes at once. Tables are written before
// their rules are added, and emptied after their rules are gone.
func planProbes(held Held, want probeState, o policy.Options) Plan {
	p := Plan{Switch: -1}
	var changed []nexthop
	for _, nh := range want.nhs {
		if cur, ok := held.ProbeNexthops[nh.id]; !ok || cur != nh {
			changed = append(changed, nh)
		}
	}
	p.add(Op{kind: opReplaceNexthops, nexthops: changed})
	slots := slices.Sorted(maps.Keys(want.tables))
	for _, slot := range slots {
		p.sync(o.ProbeTable(slot), held.ProbeTables[slot], want.tables[slot])
	}
	for _, slot := range slots {
		if !slices.Contains(held.ProbeRules, slot) {
			p.add(Op{kind: opAddRule, slot: slot})
		}
	}
	for _, slot := range held.ProbeRules {
		if _, ok := want.tables[slot]; !ok {
			p.add(Op{kind: opDeleteRule, slot: slot})
		}
	}
	for _, slot := range slices.Sorted(maps.Keys(held.ProbeTables)) {
		if _, ok := want.tables[slot]; !ok {
			p.add(Op{kind: opDeleteRoutes, table: o.ProbeTable(slot), routes: held.ProbeTables[slot]})
		}
	}
	var stale []uint32
	for id := range held.ProbeNexthops {
		if !slices.ContainsFunc(want.nhs, func(nh nexthop) bool { return nh.id == id }) {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	p.add(Op{kind: opDeleteNexthops, ids: stale})
	return p
}
