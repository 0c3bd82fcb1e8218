package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseTables reads --tables: two table numbers, comma-separated.
func ParseTables(s string) ([2]int, error) {
	var t [2]int
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return t, fmt.Errorf("--tables: want two table numbers, like 52101,52102")
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return t, fmt.Errorf("--tables: %q is not a table number", p)
		}
		t[i] = n
	}
	return t, nil
}

// ParseMark reads --mark: a number in Go's syntax (0x40, 64).
func ParseMark(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("--mark: %q is not a number such as 0x40", s)
	}
	return uint32(m), nil
}

// Validate says everything wrong with o at once, each mistake naming its
// flag and what to pick. Each check is a function of its own.
func (o Options) Validate() error {
	return errors.Join(o.checkTables(), o.checkMark(), o.checkPriorities(), o.checkProbeTables(), o.checkLaneTables(), o.checkProtocol())
}

func (o Options) checkTables() error {
	var errs []error
	for _, n := range o.Tables {
		if n <= 0 || n == 253 || n == 254 || n == 255 {
			errs = append(errs, fmt.Errorf("--tables: %d is not a free table number (not default, main or local)", n))
		}
	}
	if o.Tables[0] == o.Tables[1] {
		errs = append(errs, fmt.Errorf("--tables: the two tables must differ"))
	}
	return errors.Join(errs...)
}

func (o Options) checkMark() error {
	switch {
	case o.Mark == 0 || o.Mark&(o.Mark-1) != 0:
		return fmt.Errorf("--mark: %#x is not a single bit such as 0x40", o.Mark)
	case o.Mark&MaxProbes != 0:
		return fmt.Errorf("--mark: %#x leaves no room below it for the probes' slot number: pick a bit of 0x40 or above", o.Mark)
	}
	return nil
}

func (o Options) checkPriorities() error {
	var errs []error
	if o.ProbePriority >= o.MarkPriority || o.ProbePriority <= 0 {
		errs = append(errs, fmt.Errorf("--probe-rule-priority (%d) must come before --mark-rule-priority (%d)", o.ProbePriority, o.MarkPriority))
	}
	if o.LanePriority >= o.Priority || o.LanePriority <= 0 || o.LanePriority == o.MarkPriority || o.LanePriority == o.ProbePriority {
		errs = append(errs, fmt.Errorf("--lane-rule-priority (%d) must come before --rule-priority (%d), apart from --mark-rule-priority and --probe-rule-priority", o.LanePriority, o.Priority))
	}
	if o.MarkPriority >= o.Priority {
		errs = append(errs, fmt.Errorf("--mark-rule-priority (%d) must come before --rule-priority (%d)", o.MarkPriority, o.Priority))
	}
	if o.Priority <= 0 || o.Priority >= 32766 {
		errs = append(errs, fmt.Errorf("--rule-priority %d: must lie between the local table (0) and main (32766)", o.Priority))
	}
	return errors.Join(errs...)
}

// checkProbeTables: the probes' tables, base+1..base+MaxProbes, must be
// free: not main, local or default, and not a steering table.
func (o Options) checkProbeTables() error {
	b := o.ProbeTableBase
	inRange := func(t int) bool { return t > b && t <= b+MaxProbes }
	if b <= 0 || b+MaxProbes > 1<<31-1 || inRange(253) || inRange(254) || inRange(255) || inRange(o.Tables[0]) || inRange(o.Tables[1]) {
		return fmt.Errorf("--probe-table-base %d: tables %d..%d must be free (not main, local, default or --tables)", b, b+1, b+MaxProbes)
	}
	return nil
}

// checkLaneTables: the lanes' tables, base+1..base+MaxLanes, must be
// free, and apart from the probes'.
func (o Options) checkLaneTables() error {
	b := o.LaneTableBase
	inRange := func(t int) bool { return t > b && t <= b+MaxLanes }
	p := o.ProbeTableBase
	if b <= 0 || b+MaxLanes > 1<<31-1 || inRange(253) || inRange(254) || inRange(255) || inRange(o.Tables[0]) || inRange(o.Tables[1]) ||
		b < p+MaxProbes && p < b+MaxLanes {
		return fmt.Errorf("--lane-table-base %d: tables %d..%d must be free (not main, local, default, --tables or the probes' tables)", b, b+1, b+MaxLanes)
	}
	return nil
}

func (o Options) checkProtocol() error {
	if o.Protocol <= 4 || o.Protocol > 255 {
		return fmt.Errorf("--route-protocol %d: pick a number above 4 (kernel, boot, static are taken) and at most 255", o.Protocol)
	}
	return nil
}
