package datapath

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// hooks writes the base chains' rules: classify new connections and
// restore the mark bit; the health checks' marks.
func (w *tableWriter) hooks(s spec) {
	// prerouting: classify new connections, then restore the bit.
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.pre, Exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(expr.CtStateBitNEW), Xor: hostU32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: hostU32(0)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: w.classify.Name},
	}})
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.pre, Exprs: w.f.restoreMark()})
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.out, Exprs: w.f.restoreMark()})
	// Health-check probes: a probe's socket marks it with its slot; the
	// slot goes into its connection's mark, and back onto every packet of
	// the connection: the replies, so that strict rp_filter checks their
	// source against the probe's table (with src_valid_mark), and packets
	// the kernel sends for the connection without the socket (a late
	// reset), so that they too take the probe's gateway, never a group's
	// table or main.
	for _, slot := range s.probes {
		v := w.f.Opts.ProbeMark(slot)
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.out, Exprs: w.f.copyProbeMark(false, v)})
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.out, Exprs: w.f.copyProbeMark(true, v)})
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.pre, Exprs: w.f.copyProbeMark(true, v)})
	}
}

// classifyRules writes the classify chain.
func (w *tableWriter) classifyRules(s spec) error {
	// classify: a new connection is inbound if it is addressed to this
	// node (before DNAT: the prerouting chain runs at mangle priority,
	// ahead of dstnat) from a source outside the VPC and pod ranges.
	// IPv6 is never steered, so never marked.
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.classify, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.classify, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.classify, Exprs: []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: hostU32(unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	if len(s.inside) > 0 {
		inside := &nftables.Set{Table: w.t, Name: "inside", KeyType: nftables.TypeIPAddr, Interval: true}
		if err := w.c.AddSet(inside, intervals(s.inside)); err != nil {
			return fmt.Errorf("nftables: set of the VPC and pod ranges: %w", err)
		}
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.classify, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: inside.Name, SetID: inside.ID},
			&expr.Verdict{Kind: expr.VerdictReturn},
		}})
	}
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.classify, Exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(^w.f.Opts.Mark), Xor: hostU32(w.f.Opts.Mark)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}})
	return nil
}

// record writes the set that records the links whose src_valid_mark we
// turned on.
func (w *tableWriter) record(s spec) error {
	// The record of ValidMarks, read back by a restarted router and by
	// --cleanup.
	// iface_index: nft lists the elements by link name.
	marked := &nftables.Set{Table: w.t, Name: markedSet, KeyType: nftables.TypeIFIndex}
	var elems []nftables.SetElement
	for _, i := range s.marked {
		elems = append(elems, nftables.SetElement{Key: binary.NativeEndian.AppendUint32(nil, uint32(i))})
	}
	if err := w.c.AddSet(marked, elems); err != nil {
		return fmt.Errorf("nftables: set %s: %w", markedSet, err)
	}
	return nil
}

// counters writes one interval set and one counter per group.
func (w *tableWriter) counters(s spec) error {
	// count: one interval set and one counter per group; probes are not
	// a group's traffic.
	// A probe's packet has the Mark bit and a slot (a lane's has a slot
	// alone, and counts; a reply of an inbound connection the Mark bit
	// alone).
	if len(s.probes) > 0 {
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.count, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(w.f.Opts.Mark), Xor: hostU32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: hostU32(0)},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(w.f.Opts.ProbeMask() &^ w.f.Opts.Mark), Xor: hostU32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: hostU32(0)},
			&expr.Verdict{Kind: expr.VerdictReturn},
		}})
	}
	for i, g := range s.groups {
		set := &nftables.Set{Table: w.t, Name: fmt.Sprintf("group%d", i), KeyType: nftables.TypeIPAddr, Interval: true}
		if err := w.c.AddSet(set, nil); err != nil {
			return fmt.Errorf("nftables: set for group %s: %w", g.name, err)
		}
		if err := w.addElements(set, intervals(g.ranges), g.name); err != nil {
			return err
		}
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.count, UserData: []byte(g.name), Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
			&expr.Counter{},
		}})
	}
	return nil
}
