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

// laneSlots gives a slot in 1..MaxLanes to each on-link gateway of the
// members that need lanes in the groups that select the node: an active
// member with several gateways, or one whose predecessor drains, and the
// draining member. Slots are stable while the set changes, as
// probeSlots' are: a lane's slot is in the conntrack mark of each of its
// connections, so a slot that moved would move them. Lanes past MaxLanes
// get none: their gateways take no connection of their own.
func laneSlots(order []aged, labels map[string]string) map[laneKey]int {
	var keys []laneKey
	add := func(group string, m member) {
		for _, g := range m.gws {
			if g.onLink && g.Gateway.IsValid() {
				keys = append(keys, laneKey{group: group, member: m.obj.Name, gateway: g.Gateway})
			}
		}
	}
	for _, a := range order {
		if !a.active.several() && a.draining == nil {
			continue
		}
		if ok, err := group.Selects(a.active.obj, labels); err != nil || !ok {
			continue
		}
		add(a.name, a.active)
		if a.draining != nil {
			add(a.name, *a.draining)
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

// groupLanes are the lanes of a's active member (group.Lanes) over its
// gateways that have a slot, and while another member drains, that
// member's lanes, none open, and the drain; nil for a member with one
// gateway and no drain.
func groupLanes(in Input, a aged, slots map[laneKey]int) ([]Lane, *Drain) {
	lanes := memberLanes(in, a.name, a.active, slots)
	if a.draining == nil || len(lanes) == 0 {
		return lanes, nil
	}
	old := memberLanes(in, a.name, *a.draining, slots)
	tag := slices.IndexFunc(old, func(l Lane) bool { return l.Open })
	if tag < 0 {
		return lanes, nil
	}
	d := &Drain{Member: a.draining.obj.Name, Until: a.until, Tag: old[tag].Slot}
	for i := range old {
		old[i].Open, old[i].Draining = false, true
	}
	return append(lanes, old...), d
}

// memberLanes are m's lanes over its gateways that have a slot.
func memberLanes(in Input, groupName string, m member, slots map[laneKey]int) []Lane {
	var gws []netip.Addr
	var states []group.State
	var inSlot []int
	held := map[netip.Addr]netip.Addr{}
	for _, g := range m.gws {
		slot, ok := slots[laneKey{group: groupName, member: m.obj.Name, gateway: g.Gateway}]
		if !ok {
			continue
		}
		gws, states, inSlot = append(gws, g.Gateway), append(states, g.State), append(inSlot, slot)
		if to, ok := in.LaneTo[slot]; ok {
			held[g.Gateway] = to
		}
	}
	var out []Lane
	for i, l := range group.Lanes(gws, states, held) {
		out = append(out, Lane{Slot: inSlot[i], Lane: l})
	}
	return out
}
