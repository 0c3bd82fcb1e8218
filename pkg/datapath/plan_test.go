package datapath

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go4.org/netipx"
	"golang.org/x/sys/unix"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
)

var planSeed = flag.Uint64("plan.seed", 0, "replay the planner's random transitions with this seed (0: a new one)")

// model is the kernel's steering as the planner sees it, changed by each
// operation as the kernel changes it: the planner's tests run a plan on it
// step by step, without root, and look up destinations between steps.
type model struct {
	Held
	relabelled [][2]int // the lanes' relabels, from and to, in order
}

func newModel() *model {
	return &model{Held: Held{Tables: map[int][]kroute{}, Nexthops: map[uint32]nexthop{},
		Probes: SlotsHeld{Nexthops: map[uint32]nexthop{}}, Lanes: SlotsHeld{Nexthops: map[uint32]nexthop{}}}}
}

// do changes the model as the kernel would perform op.
func (m *model) do(op Op) error {
	switch op.kind {
	case opReplaceNexthops:
		for _, nh := range op.nexthops {
			if f, slotted := familyOf(nh.id); slotted {
				m.slots(f).Nexthops[nh.id] = nh
			} else {
				m.Nexthops[nh.id] = nh
			}
		}
	case opWriteRoutes:
		for _, r := range op.routes {
			_, group := m.Nexthops[r.nh]
			_, probe := m.Probes.Nexthops[r.nh]
			_, lane := m.Lanes.Nexthops[r.nh]
			if r.nh != 0 && !group && !probe && !lane {
				return fmt.Errorf("table %d: route %s: nexthop does not exist (ENOENT)", op.table, r)
			}
			rs := m.Tables[op.table]
			// NLM_F_REPLACE replaces the first route of the same
			// destination and metric, or adds one.
			if i := slices.IndexFunc(rs, func(o kroute) bool { return o.keyCompare(r) == 0 }); i >= 0 {
				rs[i] = r
			} else {
				rs = append(rs, r)
			}
			m.Tables[op.table] = sortRoutes(rs)
		}
	case opDeleteRoutes:
		for _, r := range op.routes {
			if i := slices.Index(m.Tables[op.table], r); i >= 0 {
				m.Tables[op.table] = slices.Delete(m.Tables[op.table], i, i+1)
			}
		}
	case opAddRule:
		if h := m.slots(op.fam); op.slot > 0 {
			if !slices.Contains(h.Rules, op.slot) {
				h.Rules = append(h.Rules, op.slot)
			}
			break
		}
		// A new rule goes behind those of the same priority.
		if !slices.Contains(m.Rules, op.table) {
			m.Rules = append(m.Rules, op.table)
		}
	case opDeleteRule:
		if h := m.slots(op.fam); op.slot > 0 {
			h.Rules = slices.DeleteFunc(h.Rules, func(s int) bool { return s == op.slot })
			break
		}
		m.Rules = slices.DeleteFunc(m.Rules, func(t int) bool { return t == op.table })
	case opDeleteNexthops:
		for _, id := range op.ids {
			delete(m.Nexthops, id)
			delete(m.Probes.Nexthops, id)
			delete(m.Lanes.Nexthops, id)
			// The kernel deletes the routes that use a deleted nexthop.
			for t, rs := range m.Tables {
				m.Tables[t] = slices.DeleteFunc(rs, func(r kroute) bool { return r.nh == id })
			}
		}
	case opAddMarkRule:
		m.MarkRule = true
	case opRelabel:
		m.relabelled = append(m.relabelled, [2]int{op.slot, op.to})
	default:
		return fmt.Errorf("unknown operation %d", op.kind)
	}
	return nil
}

// lookup is where the rules send a packet to addr: the first rule whose
// table has a matching route (longest prefix, then lowest metric) that is
// not a throw answers; none: the main table, and the node's own address.
func (m *model) lookup(addr netip.Addr) string {
	for _, t := range m.Rules {
		var best *kroute
		for i, r := range m.Tables[t] {
			p := r.prefix()
			if !p.Contains(addr) {
				continue
			}
			if best == nil || p.Bits() > int(best.bits) || p.Bits() == int(best.bits) && r.metric < best.metric {
				best = &m.Tables[t][i]
			}
		}
		switch {
		case best == nil || best.typ == unix.RTN_THROW:
			continue
		case best.typ == unix.RTN_UNREACHABLE:
			return "unreachable"
		default:
			return "via " + m.Nexthops[best.nh].gateway.String()
		}
	}
	return "main"
}

// probes are addresses that tell every route of the tables apart: each
// prefix's first and last address.
func probes(tables ...[]kroute) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, rs := range tables {
		for _, r := range rs {
			p := r.prefix()
			for _, a := range []netip.Addr{p.Addr(), netipx.PrefixLastIP(p)} {
				if !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// run performs p on m step by step. After each step every probe must be
// answered as before the plan or as after it: a destination steered both
// before and after never reaches main (leaks), and none takes a path of
// neither state. At the end the kernel holds exactly want.
func (m *model) run(t *testing.T, p Plan, want []kroute, nhs []nexthop, tables [2]int) {
	t.Helper()
	end := newModel()
	end.Rules = []int{tables[0]}
	end.Tables[tables[0]] = want
	for _, nh := range nhs {
		end.Nexthops[nh.id] = nh
	}
	var all [][]kroute
	for _, rs := range m.Tables {
		all = append(all, rs)
	}
	addrs := probes(append(all, want)...)
	before := make([]string, len(addrs))
	after := make([]string, len(addrs))
	for i, a := range addrs {
		before[i], after[i] = m.lookup(a), end.lookup(a)
	}
	// After a crash mid-swap both tables answer, and a destination may take
	// the path of an earlier state until the switch is done; never main.
	crashed := len(m.Rules) > 1
	for step, op := range p.Ops {
		if err := m.do(op); err != nil {
			t.Fatalf("step %d (%s): %v\nplan:\n%s", step, op, err, p)
		}
		for i, a := range addrs {
			got := m.lookup(a)
			if got == before[i] || got == after[i] {
				continue
			}
			if got == "main" || !crashed {
				t.Fatalf("after step %d (%s), %s goes %s: neither %s (before) nor %s (after)\nplan:\n%s", step, op, a, got, before[i], after[i], p)
			}
		}
	}
	if len(m.Rules) != 1 || m.Rules[0] != p.Table || !m.MarkRule {
		t.Fatalf("rules %v (mark rule %t), want one for table %d and the mark rule\nplan:\n%s", m.Rules, m.MarkRule, p.Table, p)
	}
	for _, table := range tables {
		if !slices.Equal(m.Tables[table], want) {
			t.Fatalf("table %d holds\n%s\nwant\n%s\nplan:\n%s", table, routeList(m.Tables[table]), routeList(want), p)
		}
	}
	if len(m.Nexthops) != len(nhs) {
		t.Fatalf("nexthops %v, want %v\nplan:\n%s", m.Nexthops, nhs, p)
	}
	for _, nh := range nhs {
		if m.Nexthops[nh.id] != nh {
			t.Fatalf("nexthops %v, want %v\nplan:\n%s", m.Nexthops, nhs, p)
		}
	}
	if again := plan(m.Held, want, nhs, tables); len(again.Ops) != 0 {
		t.Fatalf("planning the state it reached again gives:\n%s", again)
	}
}

// randomDesired is the steering of a random subset of routes that overlap,
// nest and share gateways and groups.
func randomDesired(rng *rand.Rand) policy.Desired {
	pool := []*v1.StaticRoute{
		policytest.Route("a", "", "198.51.100.4", 0, "192.0.2.0/24", "198.19.0.0/16"),
		policytest.Route("a2", "a", "198.51.100.12", time.Minute, "192.0.2.0/24", "198.19.0.0/16"),
		policytest.Route("b", "", "198.51.100.5", 2*time.Minute, "192.0.2.128/25"),
		policytest.Route("c", "", "198.51.100.6", 3*time.Minute, "198.19.7.0/24", "203.0.113.64/26"),
		policytest.Route("d", "", "198.51.100.4", 4*time.Minute, "0.0.0.0/0"),
		policytest.Route("e", "", "198.51.100.200", 5*time.Minute, "192.0.2.99"),
		policytest.Route("f", "", "198.51.100.7", 6*time.Minute, "198.18.0.0/15"),
	}
	var chosen []*v1.StaticRoute
	for _, r := range pool {
		if rng.IntN(2) == 0 {
			chosen = append(chosen, r)
		}
	}
	return policy.Compute(nodeInput(chosen...))
}

// perturb does to m what someone else, a crash or a restart might: the
// planner must get from any of these to any state safely.
func perturb(rng *rand.Rand, m *model, tables [2]int) string {
	if len(m.Tables) == 0 {
		m.Tables = map[int][]kroute{}
	}
	t := tables[rng.IntN(2)]
	switch rng.IntN(8) {
	case 0:
		m.Tables[t] = nil
		return fmt.Sprintf("table %d flushed", t)
	case 1:
		if len(m.Rules) > 0 {
			m.Rules = m.Rules[1:]
			return "the answering rule deleted"
		}
	case 2:
		// A router killed in the middle of a plan.
		want, nhs := wanted(randomDesired(rng), 7, 146)
		p := plan(m.Held, want, nhs, tables)
		n := rng.IntN(len(p.Ops) + 1)
		for _, op := range p.Ops[:n] {
			_ = m.do(op)
		}
		return fmt.Sprintf("a crash after %d of these steps:\n%s", n, p)
	case 3:
		m.MarkRule = false
		return "the mark rule deleted"
	case 4:
		for id := range m.Nexthops {
			_ = m.do(Op{kind: opDeleteNexthops, ids: []uint32{id}})
			return fmt.Sprintf("nexthop %#x deleted", id)
		}
	case 5:
		if rs := m.Tables[t]; len(rs) > 0 {
			r := rs[rng.IntN(len(rs))]
			r.proto = 4 // someone else's route, appended beside ours
			m.Tables[t] = sortRoutes(append(rs, r))
			return fmt.Sprintf("table %d: %s appended by someone else", t, r)
		}
	case 6:
		if rs := m.Tables[t]; len(rs) > 0 {
			i := rng.IntN(len(rs))
			m.Tables[t] = slices.Delete(slices.Clone(rs), i, i+1)
			return fmt.Sprintf("table %d: %s deleted", t, rs[i])
		}
	}
	return "nothing"
}

// seeded is the test's random source: -plan.seed, or a new seed, logged
// so that a failure can be replayed.
func seeded(t *testing.T) *rand.Rand {
	seed := *planSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: go test ./pkg/datapath -run '^%s$' -plan.seed %d)", seed, t.Name(), seed)
	return rand.New(rand.NewPCG(seed, 1))
}

// From any state the kernel may hold, including half-done swaps, flushed
// tables, foreign routes and lost nexthops, the plan for any desired state
// reaches it exactly, and no destination steered before and after ever
// falls through to main or takes a path of neither, at any step.
func TestPlanTransitionsInRandomOrder(t *testing.T) {
	rng := seeded(t)
	tables := policy.DefaultOptions().Tables
	named := states()
	var names []string
	for n := range named {
		names = append(names, n)
	}
	slices.Sort(names)
	const link, proto = 7, 146
	m := newModel()
	swaps, moves := 0, 0
	for step := range 3000 {
		var d policy.Desired
		what := "random"
		if rng.IntN(2) == 0 {
			what = names[rng.IntN(len(names))]
			d = named[what]
		} else {
			d = randomDesired(rng)
		}
		var happened string
		if rng.IntN(3) == 0 {
			happened = perturb(rng, m, tables)
		}
		want, nhs := wanted(d, link, proto)
		p := plan(m.Held, want, nhs, tables)
		if p.Swapped {
			swaps++
		}
		moves += p.Moved
		t.Run(fmt.Sprintf("%d-%s", step, what), func(t *testing.T) {
			if happened != "" {
				t.Logf("before it: %s", happened)
			}
			m.run(t, p, want, nhs, tables)
		})
		if t.Failed() {
			return
		}
	}
	// The sequence must have exercised both ways to switch.
	if swaps < 100 || moves < 10 {
		t.Fatalf("only %d swaps and %d in-place moves in 3000 steps", swaps, moves)
	}
}

// The plans of the golden transitions, printed: what a reviewer reads.
func TestPlanPrints(t *testing.T) {
	s := states()
	tables := policy.DefaultOptions().Tables
	m := newModel()
	var out string
	for _, name := range []string{"primary", "failover", "everything", "everything", "empty"} {
		want, nhs := wanted(s[name], 7, 146)
		p := plan(m.Held, want, nhs, tables)
		out += "# " + name + "\n" + p.String()
		m.run(t, p, want, nhs, tables)
	}
	golden(t, "plans", out)
}

// The probes' plans, from any state to any set of probes: every probe
// rule in place at any step points at a table that ends in its
// unreachable default (a probe never falls through to the steering
// tables or main), and the end state is exactly the probes'.
func TestPlanProbesInRandomOrder(t *testing.T) {
	rng := seeded(t)
	o := policy.DefaultOptions()
	pool := []policy.Probe{}
	for i, gw := range []string{"198.51.100.4", "198.51.100.12", "198.51.100.4", "198.51.100.5", "198.51.100.6"} {
		pool = append(pool, policy.Probe{Slot: 1 + rng.IntN(policy.MaxProbes), Probe: group.Probe{Path: group.Path{
			Gateway: netip.MustParseAddr(gw), Target: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Protocol: v1.ProbeICMP}}})
	}
	m := newModel()
	// The model keeps probe tables by table number; ProbeTables is the
	// planner's view of them, by slot.
	probeTables := func() {
		m.Probes.Tables = map[int][]kroute{}
		for slot := 1; slot <= policy.MaxProbes; slot++ {
			if rs := m.Tables[o.ProbeTable(slot)]; len(rs) > 0 {
				m.Probes.Tables[slot] = rs
			}
		}
	}
	for step := range 2000 {
		var ps []policy.Probe
		used := map[int]bool{}
		for _, p := range pool {
			if rng.IntN(2) == 0 && !used[p.Slot] {
				used[p.Slot] = true
				ps = append(ps, p)
			}
		}
		switch rng.IntN(4) {
		case 0:
			if len(m.Probes.Rules) > 0 {
				m.Probes.Rules = m.Probes.Rules[1:]
			}
		case 1:
			for id := range m.Probes.Nexthops {
				_ = m.do(Op{kind: opDeleteNexthops, ids: []uint32{id}})
				break
			}
		}
		probeTables()
		want := wantedProbes(ps, 7, [4]byte{198, 51, 100, 10}, 146)
		p := planSlots(probeFamily, m.Probes, want, o.ProbeTable)
		for i, op := range p.Ops {
			if err := m.do(op); err != nil {
				t.Fatalf("step %d, op %d (%s): %v\n%s", step, i, op, err, p)
			}
			for _, slot := range m.Probes.Rules {
				rs := m.Tables[o.ProbeTable(slot)]
				if !slices.ContainsFunc(rs, func(r kroute) bool { return r.bits == 0 && r.typ == unix.RTN_UNREACHABLE }) {
					t.Fatalf("step %d, after op %d (%s): the rule of slot %d points at a table without its unreachable default: %s\n%s", step, i, op, slot, routeList(rs), p)
				}
			}
		}
		probeTables()
		got := slices.Sorted(slices.Values(m.Probes.Rules))
		var wantSlots []int
		for _, pr := range ps {
			wantSlots = append(wantSlots, pr.Slot)
		}
		slices.Sort(wantSlots)
		if !slices.Equal(got, wantSlots) || len(m.Probes.Tables) != len(want.tables) || len(m.Probes.Nexthops) != len(want.nhs) {
			t.Fatalf("step %d: rules %v tables %v nexthops %v, want %v\n%s", step, got, m.Probes.Tables, m.Probes.Nexthops, ps, p)
		}
		for slot, rs := range want.tables {
			if !slices.Equal(m.Probes.Tables[slot], rs) {
				t.Fatalf("step %d: slot %d holds %s, want %s", step, slot, routeList(m.Probes.Tables[slot]), routeList(rs))
			}
		}
		probeTables()
		if again := planSlots(probeFamily, m.Probes, want, o.ProbeTable); len(again.Ops) != 0 {
			t.Fatalf("step %d: planning the state it reached again gives:\n%s", step, again)
		}
	}
}
