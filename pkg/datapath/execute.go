package datapath

import (
	"fmt"
	"slices"
	"time"

	"github.com/staticroute/staticroute/pkg/policy"
	"golang.org/x/sys/unix"
)

// readSlots returns what the kernel holds of ours but the steering
// tables: the rules (one dump), the probes' and the lanes' tables, from
// memory when trusted, and every nexthop of ours (one dump, unless the
// memory is trusted and holds the nexthops want has: the steady state).
func (k *Kernel) readSlots(known *written, trusted bool, want written) (Held, error) {
	held, err := k.readRules()
	if err != nil {
		return Held{}, err
	}
	for _, f := range []family{probeFamily, laneFamily} {
		// The slot tables read: the wanted ones and those a rule points at.
		h := held.slots(f)
		read := slices.Clone(h.Rules)
		for slot := range want.slots[f].tables {
			if !slices.Contains(read, slot) {
				read = append(read, slot)
			}
		}
		for _, slot := range read {
			if rs, ok := known.slotTable(f, slot); trusted && ok {
				h.Tables[slot] = rs
			} else if h.Tables[slot], err = k.batch.dumpRoutes(k.slotTable(f, slot)); err != nil {
				return Held{}, err
			}
		}
	}
	var all []nexthop
	if trusted && slices.Equal(known.nhs, want.nhs) && slices.Equal(known.slots[probeFamily].nhs, want.slots[probeFamily].nhs) &&
		slices.Equal(known.slots[laneFamily].nhs, want.slots[laneFamily].nhs) {
		all = slices.Concat(known.nhs, known.slots[probeFamily].nhs, known.slots[laneFamily].nhs)
	} else {
		listed, err := k.batch.listNexthops(k.Opts.Protocol)
		if err != nil {
			return Held{}, err
		}
		for _, nh := range listed {
			all = append(all, nh)
		}
	}
	held.Nexthops, held.Probes.Nexthops, held.Lanes.Nexthops = map[uint32]nexthop{}, map[uint32]nexthop{}, map[uint32]nexthop{}
	for _, nh := range all {
		if f, slotted := familyOf(nh.id); slotted {
			held.slots(f).Nexthops[nh.id] = nh
		} else {
			held.Nexthops[nh.id] = nh
		}
	}
	return held, nil
}

// readTables reads the steering tables into held, from memory when
// trusted; dumped says whether they were read from the kernel.
func (k *Kernel) readTables(held *Held, known *written, trusted bool) (dumped bool, err error) {
	for _, t := range k.Opts.Tables {
		if trusted {
			held.Tables[t] = known.routes
		} else if held.Tables[t], err = k.batch.dumpRoutes(t); err != nil {
			return false, err
		}
	}
	return !trusted, nil
}

// readRules reads our rules: the steering tables' (answering first),
// the mark rule, the probes' and the lanes'.
func (k *Kernel) readRules() (Held, error) {
	rules, err := k.batch.dumpRules()
	if err != nil {
		return Held{}, err
	}
	held := Held{Tables: make(map[int][]kroute, 2), Probes: SlotsHeld{Tables: map[int][]kroute{}}, Lanes: SlotsHeld{Tables: map[int][]kroute{}}}
	for _, r := range rules {
		switch {
		case r.priority == k.Opts.Priority && r.mark == 0 && (r.table == k.Opts.Tables[0] || r.table == k.Opts.Tables[1]):
			held.Rules = append(held.Rules, r.table)
		case r.priority == k.Opts.MarkPriority && r.table == unix.RT_TABLE_MAIN && r.mark == k.Opts.Mark:
			held.MarkRule = true
		case r.priority == k.Opts.ProbePriority:
			if slot := r.table - k.Opts.ProbeTableBase; slot >= 1 && slot <= policy.MaxProbes && r.equal(k.slotRule(probeFamily, slot)) {
				held.Probes.Rules = append(held.Probes.Rules, slot)
			}
		case r.priority == k.Opts.LanePriority:
			if slot := r.table - k.Opts.LaneTableBase; slot >= 1 && slot <= policy.MaxLanes+1 && r.equal(k.slotRule(laneFamily, slot)) {
				held.Lanes.Rules = append(held.Lanes.Rules, slot)
			}
		}
	}
	return held, nil
}

// execute performs p's operations in order, stopping at the first that
// fails. It returns how many were done and, if the switch was among them,
// the time from start to it.
func (k *Kernel) execute(p Plan, start time.Time) (done int, toSwitch time.Duration, _ error) {
	for i, op := range p.Ops {
		if err := k.do(op); err != nil {
			return i, toSwitch, err
		}
		if i == p.Switch {
			toSwitch = time.Since(start)
			if k.afterSwitch != nil {
				k.afterSwitch()
			}
		}
	}
	return len(p.Ops), toSwitch, nil
}

// do performs one operation: one netlink batch, or one rule message.
// Adding what exists and deleting what is gone count as success.
func (k *Kernel) do(op Op) error {
	switch op.kind {
	case opReplaceNexthops:
		if err := k.batch.replaceNexthops(op.nexthops, k.Opts.Protocol); err != nil {
			return fmt.Errorf("writing nexthops: %w", err)
		}
	case opWriteRoutes:
		return k.write(op.table, op.routes)
	case opDeleteRoutes:
		return k.delete(op.table, op.routes)
	case opAddRule:
		if err := k.batch.rules(unix.RTM_NEWRULE, k.ruleOf(op)); err != nil {
			return fmt.Errorf("adding %s: %w", ruleName(op), err)
		}
	case opDeleteRule:
		if err := k.batch.rules(unix.RTM_DELRULE, k.ruleOf(op)); err != nil {
			return fmt.Errorf("deleting %s: %w", ruleName(op), err)
		}
	case opDeleteNexthops:
		if err := k.batch.deleteNexthops(op.ids); err != nil {
			return fmt.Errorf("deleting unused nexthops: %w", err)
		}
	case opAddMarkRule:
		if err := k.batch.rules(unix.RTM_NEWRULE, k.markRule()); err != nil {
			return fmt.Errorf("adding the mark rule: %w", err)
		}
	case opRelabel:
		if _, err := k.Conntrack.Relabel(k.Opts.LaneMark(op.slot), k.Opts.LaneMark(op.to), k.Opts.LaneMask()); err != nil {
			return fmt.Errorf("moving the connections of lane %d to lane %d: %w", op.slot, op.to, err)
		}
	default:
		return fmt.Errorf("unknown operation %d", op.kind)
	}
	return nil
}

// ruleOf is the rule an operation adds or deletes: a slot's, or the
// steering rule of a table.
func (k *Kernel) ruleOf(op Op) ruleSpec {
	if op.slot > 0 {
		return k.slotRule(op.fam, op.slot)
	}
	return k.rule(op.table)
}

func ruleName(op Op) string {
	if op.slot > 0 {
		return fmt.Sprintf("the %s rule of slot %d", op.fam, op.slot)
	}
	return fmt.Sprintf("the rule for table %d", op.table)
}
