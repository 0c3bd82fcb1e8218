package policy

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink/nl"
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

// nhMsg is struct nhmsg.
type nhMsg struct{ unix.Nhmsg }

func (m *nhMsg) Len() int { return unix.SizeofNhmsg }

func (m *nhMsg) Serialize() []byte {
	b := make([]byte, unix.SizeofNhmsg)
	b[0], b[1], b[2], b[3] = m.Family, m.Scope, m.Protocol, m.Resvd
	binary.NativeEndian.PutUint32(b[4:], m.Flags)
	return b
}

func (b *batcher) replaceNexthops(nhs []nexthop, protocol int) error {
	reqs := make([]*nl.NetlinkRequest, len(nhs))
	for i, nh := range nhs {
		req := nl.NewNetlinkRequest(unix.RTM_NEWNEXTHOP, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
		req.AddData(&nhMsg{unix.Nhmsg{Family: unix.AF_INET, Protocol: uint8(protocol)}})
		req.AddData(nl.NewRtAttr(unix.NHA_ID, u32(nh.id)))
		gw := nh.gateway.As4()
		req.AddData(nl.NewRtAttr(unix.NHA_GATEWAY, gw[:]))
		req.AddData(nl.NewRtAttr(unix.NHA_OIF, u32(uint32(nh.link))))
		reqs[i] = req
	}
	return b.send(reqs, func(unix.Errno) bool { return false })
}

func (b *batcher) deleteNexthops(ids []uint32) error {
	reqs := make([]*nl.NetlinkRequest, len(ids))
	for i, id := range ids {
		req := nl.NewNetlinkRequest(unix.RTM_DELNEXTHOP, unix.NLM_F_ACK)
		req.AddData(&nhMsg{unix.Nhmsg{Family: unix.AF_UNSPEC}})
		req.AddData(nl.NewRtAttr(unix.NHA_ID, u32(id)))
		reqs[i] = req
	}
	return b.send(reqs, func(e unix.Errno) bool { return e == unix.ENOENT || e == unix.ESRCH })
}

// listNexthops dumps the IPv4 nexthops tagged with protocol.
func (b *batcher) listNexthops(protocol int) (map[uint32]nexthop, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETNEXTHOP, unix.NLM_F_DUMP)
	req.AddData(&nhMsg{unix.Nhmsg{Family: unix.AF_INET}})
	if err := b.sock.Send(req); err != nil {
		return nil, fmt.Errorf("listing nexthops: %w", err)
	}
	out := map[uint32]nexthop{}
	for {
		msgs, _, err := b.sock.Receive()
		if err != nil {
			return nil, fmt.Errorf("listing nexthops: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
						return nil, fmt.Errorf("listing nexthops: %w", unix.Errno(-code))
					}
				}
				return out, nil
			}
			if len(m.Data) < unix.SizeofNhmsg || int(m.Data[2]) != protocol {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m.Data[unix.SizeofNhmsg:])
			if err != nil {
				return nil, fmt.Errorf("listing nexthops: %w", err)
			}
			var nh nexthop
			for _, a := range attrs {
				switch a.Attr.Type {
				case unix.NHA_ID:
					nh.id = binary.NativeEndian.Uint32(a.Value)
				case unix.NHA_GATEWAY:
					nh.gateway, _ = netip.AddrFromSlice(a.Value)
				case unix.NHA_OIF:
					nh.link = int(binary.NativeEndian.Uint32(a.Value))
				}
			}
			out[nh.id] = nh
		}
	}
}
