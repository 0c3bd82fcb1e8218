package datapath

import (
	"golang.org/x/sys/unix"
)

// ruleSpec is one of our ip rules: "priority P [fwmark M/mask] lookup T".
type ruleSpec struct {
	priority int
	table    int
	mark     uint32
	mask     *uint32 // nil: no fwmark match
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
