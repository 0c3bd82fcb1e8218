package datapath

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
)

// flow is a connection as the model routes it: its destination and the
// lane in its conntrack mark (0: none).
type flow struct {
	dst  netip.Addr
	slot int
}

// lookupFlow is where the rules send a packet of f: its lane's rule and
// table if both answer (a throw, or no route, falls through), then the
// steering rules, then main.
func (m *model) lookupFlow(o policy.Options, f flow) string {
	if f.slot > 0 && slices.Contains(m.Lanes.Rules, f.slot) {
		var best *kroute
		for i, r := range m.Tables[o.LaneTable(f.slot)] {
			if p := r.prefix(); p.Contains(f.dst) && (best == nil || p.Bits() > int(best.bits)) {
				best = &m.Tables[o.LaneTable(f.slot)][i]
			}
		}
		if best != nil && best.typ != unix.RTN_THROW {
			return "via " + m.Lanes.Nexthops[best.nh].gateway.String()
		}
	}
	return m.lookup(f.dst)
}

// laneTables gives the planner its view of the model's lane tables, by
// slot.
func (m *model) laneTables(o policy.Options) {
	m.Lanes.Tables = map[int][]kroute{}
	for slot := 1; slot <= policy.MaxLanes+1; slot++ {
		if rs := m.Tables[o.LaneTable(slot)]; len(rs) > 0 {
			m.Lanes.Tables[slot] = slices.Clone(rs) // as a dump gives it: not the model's own slice
		}
	}
}

// randomLaneDesired is a group over A, B and C (or a newer member over A
// and C), and sometimes another group, with random health, computed as a
// router would from what the model's lanes lead to now.
func randomLaneDesired(rng *rand.Rand, m *model) (policy.Desired, string) {
	spread := policytest.WithCheck(policytest.Gateways("spread", "", []string{"198.51.100.4", "198.51.100.12", "198.51.100.20"}, 0,
		"192.0.2.0/24", "198.19.0.0/16"), "")
	routes := []*v1.StaticRoute{spread}
	if rng.IntN(4) == 0 {
		routes = append(routes, policytest.WithCheck(policytest.Gateways("spread2", "spread", []string{"198.51.100.4", "198.51.100.20"}, time.Minute,
			"192.0.2.0/24", "198.19.0.0/16"), ""))
	}
	if rng.IntN(2) == 0 {
		routes = append(routes, policytest.Route("other", "", "198.51.100.5", 2*time.Minute, "192.0.2.128/25"))
	}
	in := nodeInput(routes...)
	in.Health = map[group.Path]group.State{}
	states := ""
	for _, r := range routes {
		ps, _ := group.ProbesOf(r)
		for _, p := range ps {
			s := []group.State{group.Up, group.Up, group.Down, group.Pending, group.Damped}[rng.IntN(5)]
			in.Health[p.Path] = s
			states += s.String()[:1]
		}
	}
	in.LaneTo = map[int]netip.Addr{}
	for id, nh := range m.Lanes.Nexthops {
		in.LaneTo[int(id&^laneNexthopBase)] = nh.gateway
	}
	return policy.Compute(in), fmt.Sprintf("%d members, %s", len(routes), states)
}

// perturbLanes does to the lanes what someone else or a crash might.
func perturbLanes(rng *rand.Rand, m *model, o policy.Options) string {
	switch rng.IntN(4) {
	case 0:
		if len(m.Lanes.Rules) > 0 {
			s := m.Lanes.Rules[rng.IntN(len(m.Lanes.Rules))]
			_ = m.do(Op{kind: opDeleteRule, fam: laneFamily, slot: s})
			return fmt.Sprintf("lane %d's rule deleted", s)
		}
	case 1:
		for id := range m.Lanes.Nexthops {
			_ = m.do(Op{kind: opDeleteNexthops, ids: []uint32{id}})
			return fmt.Sprintf("lane nexthop %#x deleted", id)
		}
	case 2:
		for slot := range m.Lanes.Tables {
			delete(m.Tables, o.LaneTable(slot))
			return fmt.Sprintf("lane %d's table flushed", slot)
		}
	}
	return ""
}

// From any state, with lanes coming, going, moving away from a dead
// gateway and coming home, every connection's path at every step of the
// plan is its path before the plan or after it, never main; a relabel
// never changes a connection's path; the state is reached exactly.
func TestPlanLanesInRandomOrder(t *testing.T) {
	rng := seeded(t)
	o := policy.DefaultOptions()
	const link, proto = 7, 146
	m := newModel()
	var flows []flow
	relabels, moves := 0, 0
	for step := range 2000 {
		happened := ""
		if rng.IntN(4) == 0 {
			happened = perturbLanes(rng, m, o)
		}
		d, what := randomLaneDesired(rng, m)
		m.laneTables(o)
		want, nhs := wanted(d, link, proto)
		lanes := wantedLanes(d, link, proto)
		// As Kernel.Apply: the lanes' additions, the steering tables,
		// the lanes' removals.
		p := plan(m.Held, want, nhs, o.Tables)
		lp := planSlots(laneFamily, m.Lanes, lanes, o.LaneTable)
		ops := slices.Concat(lp.Ops[:lp.Removals], p.Ops, lp.Ops[lp.Removals:])
		moves += lp.Moved
		// Where each flow goes before, and after: on a copy of the model.
		end := &model{Held: cloneHeld(m.Held)}
		endFlows := slices.Clone(flows)
		for _, op := range ops {
			if err := end.do(op); err != nil {
				t.Fatalf("step %d (%s): %s: %v", step, what, op, err)
			}
			relabel(endFlows, op)
		}
		before, after := make([]string, len(flows)), make([]string, len(flows))
		for i := range flows {
			before[i], after[i] = m.lookupFlow(o, flows[i]), end.lookupFlow(o, endFlows[i])
		}
		for i, op := range ops {
			var atOp []string
			if op.kind == opRelabel {
				relabels++
				for _, f := range flows {
					atOp = append(atOp, m.lookupFlow(o, f))
				}
			}
			_ = m.do(op)
			relabel(flows, op)
			for k, f := range flows {
				got := m.lookupFlow(o, f)
				switch {
				case atOp != nil && got != atOp[k]:
					t.Fatalf("step %d (%s; %s), op %d (%s): flow %v went from %s to %s\n%s%s", step, what, happened, i, op, f, atOp[k], got, p, lp)
				case got == before[k] || got == after[k]:
				case got == "main" || before[k] != "main" && after[k] != "main":
					t.Fatalf("step %d (%s; %s), op %d (%s): flow %v goes %s: neither %s (before) nor %s (after)\n%s%s", step, what, happened, i, op, f, got, before[k], after[k], p, lp)
				}
			}
		}
		m.laneTables(o)
		if again := planSlots(laneFamily, m.Lanes, lanes, o.LaneTable); len(again.Ops) != 0 {
			t.Fatalf("step %d (%s; %s): planning the lanes it reached again gives:\n%s\nthe plans:\n%s%s", step, what, happened, again, p, lp)
		}
		for _, l := range d.Lanes {
			if got := m.lookupFlow(o, flow{dst: netip.MustParseAddr("192.0.2.7"), slot: l.Slot}); got != "via "+l.To.String() {
				t.Fatalf("step %d (%s): lane %d (%s) leads %s", step, what, l.Slot, l.Lane.Lane, got)
			}
		}
		// New connections: one per open lane, and one outside any.
		flows = append(flows, flow{dst: netip.MustParseAddr("198.19.3.3")})
		for _, l := range d.Lanes {
			if l.Open {
				flows = append(flows, flow{dst: netip.MustParseAddr("192.0.2.7"), slot: l.Slot})
			}
		}
		if len(flows) > 200 {
			flows = flows[len(flows)-200:]
		}
	}
	if relabels < 50 || moves < 50 {
		t.Fatalf("only %d relabels and %d lane moves in 2000 steps", relabels, moves)
	}
	t.Logf("%d relabels, %d lane moves", relabels, moves)
}

func relabel(flows []flow, op Op) {
	if op.kind != opRelabel {
		return
	}
	for i := range flows {
		if flows[i].slot == op.slot {
			flows[i].slot = op.to
		}
	}
}

// cloneHeld copies h to its routes: the model changes tables in place.
func cloneHeld(h Held) Held {
	tables := func(ts map[int][]kroute) map[int][]kroute {
		out := make(map[int][]kroute, len(ts))
		for t, rs := range ts {
			out[t] = slices.Clone(rs)
		}
		return out
	}
	c := h
	c.Rules = slices.Clone(h.Rules)
	c.Tables = tables(h.Tables)
	c.Nexthops = maps.Clone(h.Nexthops)
	for _, s := range []*SlotsHeld{&c.Probes, &c.Lanes} {
		s.Rules = slices.Clone(s.Rules)
		s.Tables = tables(s.Tables)
		s.Nexthops = maps.Clone(s.Nexthops)
	}
	return c
}
