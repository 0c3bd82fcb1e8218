package datapath

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// rtaNHID is RTA_NH_ID from linux/rtnetlink.h (not in x/sys/unix).
const rtaNHID = 30

// nexthopBase puts our nexthop IDs in a block of their own: 0x5e<24 bits>.
const nexthopBase = 0x5e000000

// Every group's steered routes point at one nexthop object of that group.
// A failover that changes only the gateway is then one `nexthop replace`:
// every route of the group moves at once and none is ever missing, at any
// table size. Other changes go through the blue/green table swap.
type nexthop struct {
	id      uint32
	gateway netip.Addr
	link    int
}

// nexthopIDs gives every group a stable ID from its name; a collision
// (1 in 16 million) goes to the next free ID, in name order.
func nexthopIDs(groups []string) map[string]uint32 {
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	out := make(map[string]uint32, len(sorted))
	used := map[uint32]bool{}
	for _, g := range sorted {
		h := fnv.New32a()
		h.Write([]byte(g))
		id := nexthopBase | h.Sum32()&0x00ffffff
		for used[id] {
			id = nexthopBase | (id+1)&0x00ffffff
		}
		used[id] = true
		out[g] = id
	}
	return out
}

// nhmsg appends struct nhmsg.
func (b *batcher) nhmsg(family, protocol uint8) {
	b.out = append(b.out, family, 0, protocol, 0, 0, 0, 0, 0)
}

func (b *batcher) replaceNexthops(nhs []nexthop, protocol int) error {
	for _, nh := range nhs {
		start := b.begin(unix.RTM_NEWNEXTHOP, unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
		b.nhmsg(unix.AF_INET, uint8(protocol))
		b.attrU32(unix.NHA_ID, nh.id)
		gw := nh.gateway.As4()
		b.attr(unix.NHA_GATEWAY, gw[:])
		b.attrU32(unix.NHA_OIF, uint32(nh.link))
		b.end(start)
	}
	return b.exchange(func(unix.Errno) bool { return false })
}

func (b *batcher) deleteNexthops(ids []uint32) error {
	for _, id := range ids {
		start := b.begin(unix.RTM_DELNEXTHOP, 0)
		b.nhmsg(unix.AF_UNSPEC, 0)
		b.attrU32(unix.NHA_ID, id)
		b.end(start)
	}
	return b.exchange(func(e unix.Errno) bool { return isGone(e) })
}

// listNexthops dumps the IPv4 nexthops tagged with protocol.
func (b *batcher) listNexthops(protocol int) (map[uint32]nexthop, error) {
	request := func() {
		start := b.begin(unix.RTM_GETNEXTHOP, unix.NLM_F_DUMP)
		b.nhmsg(unix.AF_INET, 0)
		b.end(start)
	}
	out := map[uint32]nexthop{}
	err := b.dump(request, func() { clear(out) }, func(data []byte) error {
		if len(data) < unix.SizeofNhmsg || int(data[2]) != protocol {
			return nil
		}
		var nh nexthop
		err := eachAttr(data[unix.SizeofNhmsg:], func(typ uint16, v []byte) {
			switch {
			case typ == unix.NHA_ID && len(v) == 4:
				nh.id = binary.NativeEndian.Uint32(v)
			case typ == unix.NHA_GATEWAY:
				nh.gateway, _ = netip.AddrFromSlice(v)
			case typ == unix.NHA_OIF && len(v) == 4:
				nh.link = int(binary.NativeEndian.Uint32(v))
			}
		})
		out[nh.id] = nh
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing nexthops: %w", err)
	}
	return out, nil
}
