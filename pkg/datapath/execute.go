package datapath

import (
	"fmt"
	"slices"
	"time"

	"github.com/staticroute/staticroute/pkg/policy"
	"golang.org/x/sys/unix"
)

// read returns what the kernel holds of ours, the planners' input: the
// rules always (one dump), the tables from memory when trusted, and the
// nexthops unless memory says the kernel already holds what is wanted.
// dumped says whether the tables were read from the kernel.
func (k *Kernel) read(known *written, trusted bool, want []kroute, nhs []nexthop, probes probeState) (_ Held, dumped bool, _ error) {
	held, err := k.readRules()
	if err != nil {
		return Held{}, false, err
	}
	// The probe tables read: the wanted ones and those a rule points at.
	slots := slices.Clone(held.ProbeRules)
	for slot := range probes.tables {
		if !slices.Contains(slots, slot) {
			slots = append(slots, slot)
		}
	}
	for _, t := range k.Opts.Tables {
		if trusted {
			held.Tables[t] = known.routes
		} else if held.Tables[t], err = k.batch.dumpRoutes(t); err != nil {
			return Held{}, false, err
		}
	}
	for _, slot := range slots {
		if rs, ok := known.probeTable(slot); trusted && ok {
			held.ProbeTables[slot] = rs
		} else if held.ProbeTables[slot], err = k.batch.dumpRoutes(k.Opts.ProbeTable(slot)); err != nil {
			return Held{}, false, err
		}
	}
	// The steady state: what was last written is wanted still and nothing
	// invalidated it; the nexthops are what was written.
	if trusted && len(held.Rules) == 1 && slices.Equal(known.routes, want) && slices.Equal(known.nhs, nhs) && slices.Equal(known.probes.nhs, probes.nhs) {
		held.Nexthops = byID(known.nhs)
		held.ProbeNexthops = byID(known.probes.nhs)
		return held, false, nil
	}
	all, err := k.batch.listNexthops(k.Opts.Protocol)
	if err != nil {
		return Held{}, false, err
	}
	held.Nexthops, held.ProbeNexthops = map[uint32]nexthop{}, map[uint32]nexthop{}
	for id, nh := range all {
		if isProbeNexthop(id) {
			held.ProbeNexthops[id] = nh
		} else {
			held.Nexthops[id] = nh
		}
	}
	return held, !trusted, nil
}

// readRules reads our rules: the steering tables' (answering first),
// the mark rule, the probes'.
func (k *Kernel) readRules() (Held, error) {
	rules, err := k.batch.dumpRules()
	if err != nil {
		return Held{}, err
	}
	held := Held{Tables: make(map[int][]kroute, 2), ProbeTables: map[int][]kroute{}}
	for _, r := range rules {
		switch {
		case r.priority == k.Opts.Priority && r.mark == 0 && (r.table == k.Opts.Tables[0] || r.table == k.Opts.Tables[1]):
			held.Rules = append(held.Rules, r.table)
		case r.priority == k.Opts.MarkPriority && r.table == unix.RT_TABLE_MAIN && r.mark == k.Opts.Mark:
			held.MarkRule = true
		case r.priority == k.Opts.ProbePriority:
			if slot := r.table - k.Opts.ProbeTableBase; slot >= 1 && slot <= policy.MaxProbes && r.mark == k.Opts.ProbeMark(slot) &&
				r.mask != nil && *r.mask == k.Opts.ProbeMask() {
				held.ProbeRules = append(held.ProbeRules, slot)
			}
		}
	}
	return held, nil
}

func byID(nhs []nexthop) map[uint32]nexthop {
	out := make(map[uint32]nexthop, len(nhs))
	for _, nh := range nhs {
		out[nh.id] = nh
	}
	return out
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
	default:
		return fmt.Errorf("unknown operation %d", op.kind)
	}
	return nil
}

// ruleOf is the rule an operation adds or deletes: a probe slot's, or the
// steering rule of a table.
func (k *Kernel) ruleOf(op Op) ruleSpec {
	if op.slot > 0 {
		return k.probeRule(op.slot)
	}
	return k.rule(op.table)
}

func ruleName(op Op) string {
	if op.slot > 0 {
		return fmt.Sprintf("the probe rule of slot %d", op.slot)
	}
	return fmt.Sprintf("the rule for table %d", op.table)
}
