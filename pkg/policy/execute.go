package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// read returns what the kernel holds of ours, the planner's input: the
// rules always (one dump), the tables from memory when trusted, and the
// nexthops unless memory says the kernel already holds want and nhs.
// dumped says whether the tables were read from the kernel.
func (k *Kernel) read(known *written, trusted bool, want []kroute, nhs []nexthop) (_ Held, dumped bool, _ error) {
	rules, err := k.NL.RuleList(unix.AF_INET)
	if err != nil {
		return Held{}, false, fmt.Errorf("listing rules: %w", err)
	}
	held := Held{Tables: make(map[int][]kroute, 2)}
	for _, r := range rules {
		switch {
		case r.Priority == k.Opts.Priority && r.Mark == 0 && (r.Table == k.Opts.Tables[0] || r.Table == k.Opts.Tables[1]):
			held.Rules = append(held.Rules, r.Table)
		case r.Priority == k.Opts.MarkPriority && r.Table == unix.RT_TABLE_MAIN && r.Mark == k.Opts.Mark:
			held.MarkRule = true
		}
	}
	for _, t := range k.Opts.Tables {
		if trusted {
			held.Tables[t] = known.routes
		} else if held.Tables[t], err = k.batch.dumpRoutes(t); err != nil {
			return Held{}, false, err
		}
	}
	// The steady state: what was last written is wanted still and nothing
	// invalidated it; the nexthops are what was written.
	if trusted && len(held.Rules) == 1 && slices.Equal(known.routes, want) && slices.Equal(known.nhs, nhs) {
		held.Nexthops = make(map[uint32]nexthop, len(known.nhs))
		for _, nh := range known.nhs {
			held.Nexthops[nh.id] = nh
		}
		return held, false, nil
	}
	if held.Nexthops, err = k.batch.listNexthops(k.Opts.Protocol); err != nil {
		return Held{}, false, err
	}
	return held, !trusted, nil
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
		if err := k.NL.RuleAdd(k.rule(op.table)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding the rule for table %d: %w", op.table, err)
		}
	case opDeleteRule:
		if err := k.NL.RuleDel(k.rule(op.table)); err != nil && !isGone(err) {
			return fmt.Errorf("deleting the rule for table %d: %w", op.table, err)
		}
	case opDeleteNexthops:
		if err := k.batch.deleteNexthops(op.ids); err != nil {
			return fmt.Errorf("deleting unused nexthops: %w", err)
		}
	case opAddMarkRule:
		if err := k.NL.RuleAdd(k.markRule()); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding the mark rule: %w", err)
		}
	default:
		return fmt.Errorf("unknown operation %d", op.kind)
	}
	return nil
}
