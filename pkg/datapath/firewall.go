package datapath

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/staticroute/staticroute/pkg/policy"
	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// Firewall keeps the nftables table `inet <Opts.NFTable>`: the connmark bit
// for connections that come in from outside, restored as the packet mark
// so that their replies take the fwmark rule to main and leave the way
// they came; and a packet/byte counter per group. Every change replaces
// the whole table in one transaction (one Flush).
//
// A connection is inbound when its first packet is addressed to the node
// itself and comes from outside the VPC and pod ranges, judged before
// DNAT, so that NodePort and hostPort connections count. Interface names
// play no part: forwarded pod traffic is never addressed to the node,
// whatever the CNI calls its links (lxc*, cali*, cni0, cbr0, …), so it is
// never exempted from steering.
type Firewall struct {
	Conn *NFTConn
	Opts policy.Options

	applied [sha256.Size]byte // the spec last written, to write only on change
	// stale is set by Invalidate, from the nftables watcher's goroutine:
	// the next Apply rewrites the table whatever it wrote last.
	stale atomic.Bool
}

// markedSet is the set of ifindexes in our table that records which links
// ValidMarks turned src_valid_mark on for.
const markedSet = "src_valid_mark"

// elementsPerMessage bounds the set elements sent in one netlink message:
// past about 64 KiB per message the kernel drops elements silently.
const elementsPerMessage = 1000

// Counter is one group's traffic through its gateway.
type Counter struct{ Packets, Bytes uint64 }

// spec is the firewall part of a desired state, printable and comparable.
type spec struct {
	inside []netipx.IPRange // sources that are never inbound: VPC and pods
	groups []groupSet
	marked []int // ifindexes of the links whose src_valid_mark we turned on (MarkPlan.Record)
	probes []int // the health checks' slots
	// lanes are the groups with lanes, laneSlots every lane's slot.
	lanes     []laneGroup
	laneSlots []int
}

type groupSet struct {
	name   string
	ranges []netipx.IPRange // disjoint, merged, sorted
}

func firewallSpec(d policy.Desired) spec {
	s := spec{inside: ranges(d.Inside)}
	for _, g := range d.Groups {
		if g.State == "" || len(g.Prefixes) == 0 {
			continue
		}
		s.groups = append(s.groups, groupSet{name: g.Name, ranges: ranges(g.Prefixes)})
	}
	for _, p := range d.Probes {
		s.probes = append(s.probes, p.Slot)
	}
	s.lanes, s.laneSlots = laneGroups(d)
	return s
}

func (s spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "inside=%v marked=%v probes=%v\n", s.inside, s.marked, s.probes)
	for _, g := range s.groups {
		fmt.Fprintf(&b, "%s %v\n", g.name, g.ranges)
	}
	fmt.Fprintf(&b, "lanes=%v\n", s.laneSlots)
	for _, g := range s.lanes {
		fmt.Fprintf(&b, "lanes of %s: open %v drain %d to %v\n", g.name, g.open, g.drain, g.ranges)
	}
	return b.String()
}

// Invalidate makes the next Apply rewrite the table: call it when another
// program changed it (WatchFirewall).
func (f *Firewall) Invalidate() { f.stale.Store(true) }

// Apply writes the table for d, with marked as the record of the links
// whose src_valid_mark we turned on (ValidMarks.Read's MarkPlan.Record),
// if it differs from what this Firewall last wrote, the table is gone,
// or it was invalidated.
func (f *Firewall) Apply(d policy.Desired, marked []int) (changed bool, err error) {
	f.Conn.bound()
	s := firewallSpec(d)
	s.marked = slices.Clone(marked)
	key := sha256.Sum256([]byte(s.String()))
	if f.applied == key && !f.stale.Swap(false) {
		if t, err := f.Conn.ListTableOfFamily(f.Opts.NFTable, nftables.TableFamilyINet); err == nil && t != nil {
			return false, nil
		}
	}
	if err := f.write(s); err != nil {
		f.applied = [sha256.Size]byte{}
		return false, err
	}
	f.applied = key
	return true, nil
}

// Cleanup deletes our table, and nothing else.
func (f *Firewall) Cleanup() error {
	f.Conn.bound()
	f.applied = [sha256.Size]byte{}
	if _, err := f.Conn.ListTableOfFamily(f.Opts.NFTable, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("nftables: looking for table %s: %w", f.Opts.NFTable, err)
	}
	f.Conn.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: f.Opts.NFTable})
	if err := f.Conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables: deleting table %s: %w", f.Opts.NFTable, err)
	}
	return nil
}

// recordedMarks reads the links the record names (none if our table is
// gone).
func (f *Firewall) recordedMarks() ([]int, error) {
	f.Conn.bound()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: f.Opts.NFTable}
	set, err := f.Conn.GetSetByName(t, markedSet)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nftables: reading set %s: %w", markedSet, err)
	}
	elems, err := f.Conn.GetSetElements(set)
	if err != nil {
		return nil, fmt.Errorf("nftables: reading set %s: %w", markedSet, err)
	}
	var out []int
	for _, e := range elems {
		if len(e.Key) == 4 {
			out = append(out, int(binary.NativeEndian.Uint32(e.Key)))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Counters reads each group's counter.
func (f *Firewall) Counters() (map[string]Counter, error) {
	f.Conn.bound()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: f.Opts.NFTable}
	rules, err := f.Conn.GetRules(t, &nftables.Chain{Name: "count", Table: t})
	if err != nil {
		return nil, fmt.Errorf("nftables: reading counters: %w", err)
	}
	out := map[string]Counter{}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok && len(r.UserData) > 0 {
				out[string(r.UserData)] = Counter{Packets: c.Packets, Bytes: c.Bytes}
			}
		}
	}
	return out, nil
}

// tableWriter builds our table's objects into one nftables transaction.
type tableWriter struct {
	f                         *Firewall
	c                         *NFTConn
	t                         *nftables.Table
	classify, pre, out, count *nftables.Chain
}

func (f *Firewall) write(s spec) error {
	c := f.Conn
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: f.Opts.NFTable}
	// add + delete + add: replaces the table whether or not it exists,
	// all inside the one transaction Flush sends.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	w := &tableWriter{f: f, c: c, t: t,
		classify: c.AddChain(&nftables.Chain{Name: "classify", Table: t}),
		pre: c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle}),
		// A filter chain on output marks but never re-routes: it must be
		// a route chain for the mark to reach the fwmark rule.
		out: c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeRoute,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle}),
		count: c.AddChain(&nftables.Chain{Name: "count", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityMangle}),
	}
	w.hooks(s)
	for _, write := range []func(spec) error{w.classifyRules, w.record, w.counters, w.lanes} {
		if err := write(s); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: writing table %s: %w", f.Opts.NFTable, err)
	}
	return nil
}

// restoreMark sets the mark bit on a packet whose connection carries it,
// touching no other bit.
func (f *Firewall) restoreMark() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(f.Opts.Mark), Xor: hostU32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: hostU32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(^f.Opts.Mark), Xor: hostU32(f.Opts.Mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
	}
}

// copyProbeMark is "if the packet's mark (fromConn: its connection's)
// holds the probe mark v under ProbeMask, set v under ProbeMask on its
// connection (fromConn: on the packet)", touching no other bit.
func (f *Firewall) copyProbeMark(fromConn bool, v uint32) []expr.Any {
	mask := f.Opts.ProbeMask()
	var from, to, write expr.Any = &expr.Meta{Key: expr.MetaKeyMARK, Register: 1}, &expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true}
	if fromConn {
		from, to, write = to, from, &expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true}
	}
	return []expr.Any{
		from,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(mask), Xor: hostU32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: hostU32(v)},
		to,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(^mask), Xor: hostU32(v)},
		write,
	}
}

// hostU32 is a mark or ct value as the kernel's registers hold it: in host
// byte order, not little-endian on every machine.
func hostU32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// ifname is an interface name as iifname compares it: NUL-terminated.
func ifname(name string) []byte {
	return append([]byte(name), 0)
}

// ranges is the union of ps as disjoint, merged address ranges, sorted:
// what an interval set holds.
func ranges(ps []netip.Prefix) []netipx.IPRange {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	set, _ := b.IPSet() // only invalid prefixes err, and Compute makes none
	return set.Ranges()
}

// intervals turns ranges into interval set elements: the first address,
// and the address after the last flagged as the end. 255.255.255.255 is
// never steered, so a range that reaches it ends one address early and
// the end never overflows.
func intervals(rs []netipx.IPRange) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(rs))
	for _, r := range rs {
		first := r.From().As4()
		end := r.To().Next()
		if !end.IsValid() || end == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			end = netip.AddrFrom4([4]byte{255, 255, 255, 255})
		}
		e := end.As4()
		out = append(out, nftables.SetElement{Key: first[:]}, nftables.SetElement{Key: e[:], IntervalEnd: true})
	}
	return out
}
