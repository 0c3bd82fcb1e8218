package datapath

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"go4.org/netipx"
	"golang.org/x/sys/unix"

	"github.com/staticroute/staticroute/pkg/policy"
)

// laneGroup is a group with lanes as the firewall sees it: the addresses
// whose new connections take one of its lanes (policy.Desired.Steered),
// and the lanes they take, round-robin.
type laneGroup struct {
	name   string
	ranges []netipx.IPRange
	open   []int // slots
	// drain is the lane that a connection in none takes while a member
	// drains (policy.Drain.Tag); 0: no drain.
	drain int
}

// laneGroups are d's groups with lanes, and every lane's slot.
func laneGroups(d policy.Desired) ([]laneGroup, []int) {
	steered := d.Steered()
	var out []laneGroup
	var all []int
	for _, g := range d.Groups {
		if len(g.Lanes) == 0 {
			continue
		}
		lg := laneGroup{name: g.Name}
		if g.Drain != nil {
			lg.drain = g.Drain.Tag
		}
		if set := steered[g.Name]; set != nil {
			lg.ranges = set.Ranges()
		}
		for _, l := range g.Lanes {
			all = append(all, l.Slot)
			if l.Open {
				lg.open = append(lg.open, l.Slot)
			}
		}
		if len(lg.ranges) > 0 && len(lg.open) > 0 {
			out = append(out, lg)
		}
	}
	slices.Sort(all)
	return out, all
}

// lanes writes the lanes' rules: the first packet of a connection to a
// group with lanes picks one of the group's open lanes, round-robin
// (nftables' numgen), into its conntrack mark; every packet of the
// connection in its original direction then carries the lane's mark, to
// the lane's rule and table. Replies never do: they are routed to the pod
// or the node, not to a gateway. A connection that is inbound, a probe,
// or already in a lane is left alone, and so are the bits of the marks
// that are not the lanes'.
func (w *tableWriter) lanes(s spec) error {
	if len(s.laneSlots) == 0 {
		return nil
	}
	mask := w.f.Opts.LaneMask()
	sel := w.c.AddChain(&nftables.Chain{Name: "lanes", Table: w.t})
	for _, base := range []*nftables.Chain{w.pre, w.out} {
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: base, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(expr.CtStateBitNEW), Xor: hostU32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: hostU32(0)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: sel.Name},
		}})
	}
	for _, skip := range [][]expr.Any{
		{&expr.Ct{Key: expr.CtKeyMARK, Register: 1}},
		{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1}},
	} {
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: sel, Exprs: append(skip,
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(mask), Xor: hostU32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: hostU32(0)},
			&expr.Verdict{Kind: expr.VerdictReturn},
		)})
	}
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: sel, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	pick := map[int]*nftables.Chain{}
	for _, slot := range s.laneSlots {
		// pick<slot>: the connection takes the lane.
		pick[slot] = w.c.AddChain(&nftables.Chain{Name: fmt.Sprintf("pick%d", slot), Table: w.t})
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: pick[slot], Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(^mask), Xor: hostU32(w.f.Opts.LaneMark(slot))},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		}})
	}
	for i, g := range s.lanes {
		set, err := w.pickLane(sel, i, g, pick)
		if err != nil {
			return err
		}
		if g.drain > 0 {
			w.drainInto(set, pick[g.drain])
		}
	}
	return w.keepLanes(s.laneSlots)
}

// drainInto puts every connection to set that is in no lane (and is not
// inbound nor a probe) into the draining member's lane pick: new ones
// took a lane of the new member already, so these are connections from
// before the switch, which keep the old member's gateway and are counted
// by its lane's mark from their next packet on.
func (w *tableWriter) drainInto(set *nftables.Set, pick *nftables.Chain) {
	for _, base := range []*nftables.Chain{w.pre, w.out} {
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: base, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(w.f.Opts.LaneMask()), Xor: hostU32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: hostU32(0)},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(w.f.Opts.LaneMask()), Xor: hostU32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: hostU32(0)},
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: pick.Name},
		}})
	}
}

// pickLane writes group g's rule in the lanes chain: its addresses, then
// round-robin over its open lanes.
func (w *tableWriter) pickLane(sel *nftables.Chain, i int, g laneGroup, pick map[int]*nftables.Chain) (*nftables.Set, error) {
	set := &nftables.Set{Table: w.t, Name: fmt.Sprintf("lanes%d", i), KeyType: nftables.TypeIPAddr, Interval: true}
	if err := w.c.AddSet(set, nil); err != nil {
		return nil, fmt.Errorf("nftables: set of the lanes of group %s: %w", g.name, err)
	}
	if err := w.addElements(set, intervals(g.ranges), g.name); err != nil {
		return nil, err
	}
	choose := &nftables.Set{Table: w.t, Anonymous: true, Constant: true, IsMap: true, KeyType: nftables.TypeInteger, DataType: nftables.TypeVerdict}
	var elems []nftables.SetElement
	for k, slot := range g.open {
		elems = append(elems, nftables.SetElement{Key: hostU32(uint32(k)),
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: pick[slot].Name}})
	}
	if err := w.c.AddSet(choose, elems); err != nil {
		return nil, fmt.Errorf("nftables: the round-robin of group %s: %w", g.name, err)
	}
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: sel, UserData: []byte(g.name), Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Numgen{Register: 1, Modulus: uint32(len(g.open)), Type: unix.NFT_NG_INCREMENTAL},
		&expr.Lookup{SourceRegister: 1, SetName: choose.Name, SetID: choose.ID, IsDestRegSet: true, DestRegister: 0},
	}})
	return set, nil
}

// keepLanes gives every packet of a lane's connection in its original
// direction the lane's mark, in prerouting and output.
func (w *tableWriter) keepLanes(slots []int) error {
	mask := w.f.Opts.LaneMask()
	keep := map[int]*nftables.Chain{}
	for _, slot := range slots {
		keep[slot] = w.c.AddChain(&nftables.Chain{Name: fmt.Sprintf("keep%d", slot), Table: w.t})
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: keep[slot], Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(^mask), Xor: hostU32(w.f.Opts.LaneMark(slot))},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
		}})
	}
	for _, base := range []*nftables.Chain{w.pre, w.out} {
		// An anonymous map belongs to the one rule that uses it.
		byMark := &nftables.Set{Table: w.t, Anonymous: true, Constant: true, IsMap: true, KeyType: nftables.TypeMark, DataType: nftables.TypeVerdict}
		var elems []nftables.SetElement
		for _, slot := range slots {
			elems = append(elems, nftables.SetElement{Key: hostU32(w.f.Opts.LaneMark(slot)), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: keep[slot].Name}})
		}
		if err := w.c.AddSet(byMark, elems); err != nil {
			return fmt.Errorf("nftables: the lanes' marks: %w", err)
		}
		w.c.AddRule(&nftables.Rule{Table: w.t, Chain: base, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // IP_CT_DIR_ORIGINAL
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(mask), Xor: hostU32(0)},
			&expr.Lookup{SourceRegister: 1, SetName: byMark.Name, SetID: byMark.ID, IsDestRegSet: true, DestRegister: 0},
		}})
	}
	return nil
}

// addElements adds an interval set's elements in messages the kernel
// takes whole.
func (w *tableWriter) addElements(set *nftables.Set, elems []nftables.SetElement, group string) error {
	for len(elems) > 0 {
		n := min(len(elems), elementsPerMessage)
		if err := w.c.SetAddElements(set, elems[:n]); err != nil {
			return fmt.Errorf("nftables: elements of group %s: %w", group, err)
		}
		elems = elems[n:]
	}
	return nil
}
