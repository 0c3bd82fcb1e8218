package policy

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/staticroute/staticroute/pkg/group"
)

// MaxLanes is how many lanes a node holds at most: each takes one of the
// 63 values of the lane mark's bits (Options.LaneMark) but istioSlot.
const MaxLanes = 62

// istioSlot is never a lane's: Istio marks its proxy's packets 0x539,
// whose bits under the lane mask (0x7f by default) are 0x39, and they
// must not take a lane's rule.
const istioSlot = 0x39

// laneKey names a lane: its group, member and gateway. A new member's
// lanes are new lanes, whatever their gateways.
type laneKey struct {
	group, member string
	gateway       netip.Addr
}

func (k laneKey) String() string { return k.group + "/" + k.member + "/" + k.gateway.String() }

// laneSlots gives a slot in 1..MaxLanes to each on-link gateway of every
// active member with several gateways whose group selects the node,
// stable while the set changes, as probeSlots does: a lane's slot is in
// the conntrack mark of each of its connections, so a slot that moved
// would move them. Lanes past MaxLanes get none: their gateways take no
// connection of their own.
func laneSlots(order []aged, labels map[string]string) map[laneKey]int {
	var keys []laneKey
	for _, a := range order {
		if !a.active.several() {
			continue
		}
		if ok, err := group.Selects(a.active.obj, labels); err != nil || !ok {
			continue
		}
		for _, g := range a.active.gws {
			if g.onLink && g.Gateway.IsValid() {
				keys = append(keys, laneKey{group: a.name, member: a.active.obj.Name, gateway: g.Gateway})
			}
		}
	}
	slices.SortFunc(keys, func(a, b laneKey) int { return strings.Compare(a.String(), b.String()) })
	used := map[int]bool{istioSlot: true}
	out := make(map[laneKey]int, len(keys))
	for _, k := range keys {
		if len(out) == MaxLanes {
			break
		}
		out[k] = freeSlot(used, k.String(), MaxLanes+1)
	}
	return out
}

// groupLanes are the lanes of a's active member (group.Lanes), over its
// gateways that have a slot; nil for a member with one gateway.
func groupLanes(in Input, a aged, slots map[laneKey]int) []Lane {
	var gws []netip.Addr
	var states []group.State
	var inSlot []int
	held := map[netip.Addr]netip.Addr{}
	for _, g := range a.active.gws {
		slot, ok := slots[laneKey{group: a.name, member: a.active.obj.Name, gateway: g.Gateway}]
		if !ok {
			continue
		}
		gws, states, inSlot = append(gws, g.Gateway), append(states, g.State), append(inSlot, slot)
		if to, ok := in.LaneTo[slot]; ok {
			held[g.Gateway] = to
		}
	}
	if len(gws) == 0 {
		return nil
	}
	var out []Lane
	for i, l := range group.Lanes(gws, states, held) {
		out = append(out, Lane{Slot: inSlot[i], Lane: l})
	}
	return out
}
