package datapath

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// ruleSpec is one of our ip rules: "priority P [fwmark M/mask] lookup T".
type ruleSpec struct {
	priority int
	table    int
	mark     uint32
	mask     *uint32 // nil: no fwmark match
}

// equal says r is o: the same priority, table and fwmark match.
func (r ruleSpec) equal(o ruleSpec) bool {
	return r.priority == o.priority && r.table == o.table && r.mark == o.mark &&
		(r.mask == nil) == (o.mask == nil) && (r.mask == nil || *r.mask == *o.mask)
}

// rules adds (RTM_NEWRULE) or deletes (RTM_DELRULE) rs in one batch.
// Adding a rule that exists and deleting one that is gone count as
// success. Rules go through the batcher's socket like routes and
// nexthops, so that every change we make to the kernel's routing comes
// back as an event from that one socket's port, which the kernel watch
// recognises as ours (see WatchKernel).
func (b *batcher) rules(msgType uint16, rs ...ruleSpec) error {
	for _, r := range rs {
		flags, action := uint16(0), uint8(0) // a delete matches any action
		if msgType == unix.RTM_NEWRULE {
			flags, action = unix.NLM_F_CREATE|unix.NLM_F_EXCL, unix.FR_ACT_TO_TBL
		}
		start := b.begin(msgType, flags)
		// struct fib_rule_hdr: family, dst_len, src_len, tos, table,
		// res1, res2, action, flags (u32). The table goes in FRA_TABLE:
		// ours are above 255.
		b.out = append(b.out, unix.AF_INET, 0, 0, 0, unix.RT_TABLE_UNSPEC, 0, 0, action, 0, 0, 0, 0)
		b.attrU32(unix.FRA_PRIORITY, uint32(r.priority))
		b.attrU32(unix.FRA_TABLE, uint32(r.table))
		if r.mask != nil {
			b.attrU32(unix.FRA_FWMARK, r.mark)
			b.attrU32(unix.FRA_FWMASK, *r.mask)
		}
		b.end(start)
	}
	return b.exchange(func(e unix.Errno) bool {
		if msgType == unix.RTM_NEWRULE {
			return e == unix.EEXIST
		}
		return isGone(e)
	})
}

// dumpRules lists the IPv4 rules, in the kernel's order (by priority,
// then the order they were added).
func (b *batcher) dumpRules() ([]ruleSpec, error) {
	var out []ruleSpec
	request := func() {
		start := b.begin(unix.RTM_GETRULE, unix.NLM_F_DUMP)
		b.out = append(b.out, unix.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // struct fib_rule_hdr
		b.end(start)
	}
	err := b.dump(request, func() { out = out[:0] }, func(data []byte) error {
		r, ipv4, err := parseRule(data)
		if ipv4 && err == nil {
			out = append(out, r)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing rules: %w", err)
	}
	return out, nil
}

// parseRule reads a rule message's payload (struct fib_rule_hdr and its
// attributes); ipv4 says whether it is an IPv4 rule. A rule with no
// FRA_FWMASK has a nil mask, whatever its mark (the kernel leaves the
// mask out when it is all ones).
func parseRule(data []byte) (r ruleSpec, ipv4 bool, err error) {
	if len(data) < fibRuleHdrLen {
		return ruleSpec{}, false, fmt.Errorf("rule message of %d bytes", len(data))
	}
	r.table = int(data[4])
	err = eachAttr(data[fibRuleHdrLen:], func(typ uint16, v []byte) {
		if len(v) != 4 {
			return
		}
		n := binary.NativeEndian.Uint32(v)
		switch typ {
		case unix.FRA_PRIORITY:
			r.priority = int(n)
		case unix.FRA_TABLE:
			r.table = int(n)
		case unix.FRA_FWMARK:
			r.mark = n
		case unix.FRA_FWMASK:
			r.mask = &n
		}
	})
	return r, data[0] == unix.AF_INET, err
}

// fibRuleHdrLen is the size of struct fib_rule_hdr.
const fibRuleHdrLen = 12
