package datapath

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/staticroute/staticroute/pkg/policy"
	"golang.org/x/sys/unix"
)

// kroute is one route of a steering table as the kernel holds it, in 20
// bytes: comparable, so that what Apply remembers of 20,000 routes costs
// 400 kB and two tables compare without building strings. The table is not
// part of it: both tables hold the same routes.
type kroute struct {
	dst    [4]byte
	bits   uint8
	typ    uint8 // RTN_UNICAST, RTN_THROW or RTN_UNREACHABLE
	proto  uint8 // ours, unless someone else wrote into our table
	metric uint32
	nh     uint32  // the group's nexthop object (steered routes only)
	src    [4]byte // preferred source address (steered routes only)
}

func (r kroute) prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4(r.dst), int(r.bits))
}

// compare orders routes by destination, then the rest: the order of ip
// route's listing, and the one diff relies on.
func (r kroute) compare(o kroute) int {
	if c := r.keyCompare(o); c != 0 {
		return c
	}
	if c := cmp.Compare(r.typ, o.typ); c != 0 {
		return c
	}
	if c := cmp.Compare(r.proto, o.proto); c != 0 {
		return c
	}
	if c := cmp.Compare(r.nh, o.nh); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint32(r.src[:]), binary.BigEndian.Uint32(o.src[:]))
}

func sortRoutes(rs []kroute) []kroute {
	if !slices.IsSortedFunc(rs, kroute.compare) { // what Compute and the kernel give
		slices.SortFunc(rs, kroute.compare)
	}
	return slices.CompactFunc(rs, func(a, b kroute) bool { return a == b })
}

// keyCompare orders routes by what the kernel tells them apart by in a
// table: destination and metric.
func (r kroute) keyCompare(o kroute) int {
	if c := cmp.Compare(binary.BigEndian.Uint32(r.dst[:]), binary.BigEndian.Uint32(o.dst[:])); c != 0 {
		return c
	}
	if c := cmp.Compare(r.bits, o.bits); c != 0 {
		return c
	}
	return cmp.Compare(r.metric, o.metric)
}

// changes are what turns a table that holds some routes into one that
// holds others.
type changes struct {
	// clear goes first: destinations and metrics held more than once
	// (someone appended to our table), deleted whole.
	clear []kroute
	// write goes next; each route replaces the one of the same
	// destination and metric, so a route that changes is only written.
	write []kroute
	// del goes last: what no wanted route replaced.
	del []kroute
}

// diff returns the changes that make a table holding have hold want; both
// sorted.
func diff(have, want []kroute) changes {
	var c changes
	if slices.Equal(have, want) {
		return c
	}
	for len(have) > 0 || len(want) > 0 {
		// The next destination and metric, and the routes of it in each.
		var key kroute
		switch {
		case len(have) == 0:
			key = want[0]
		case len(want) == 0 || have[0].keyCompare(want[0]) < 0:
			key = have[0]
		default:
			key = want[0]
		}
		h, w := 0, 0
		for h < len(have) && have[h].keyCompare(key) == 0 {
			h++
		}
		for w < len(want) && want[w].keyCompare(key) == 0 {
			w++
		}
		switch {
		case w == 0:
			c.del = append(c.del, have[:h]...)
		case h > 1:
			c.clear = append(c.clear, have[:h]...)
			c.write = append(c.write, want[:w]...)
		case h == 0 || !slices.Equal(have[:h], want[:w]):
			c.write = append(c.write, want[:w]...)
		}
		have, want = have[h:], want[w:]
	}
	return c
}

// wanted turns d into the routes of a steering table (sorted) and the
// nexthop of each steering group. link is the VPC link's index.
func wanted(d policy.Desired, link int, proto uint8) ([]kroute, []nexthop) {
	nhs, ids := groupNexthops(d, link)
	return wantedRoutes(d, ids, proto), nhs
}

// groupNexthops are the nexthops of the groups d routes via a gateway,
// and each one's ID: cheap next to the routes, so that an Apply can tell
// whether its memory of the nexthops still holds before it builds them.
func groupNexthops(d policy.Desired, link int) ([]nexthop, map[string]uint32) {
	var groups []string
	gateways := map[string]netip.Addr{}
	for _, r := range d.Routes {
		if r.Kind == policy.Via {
			if _, ok := gateways[r.Group]; !ok {
				groups = append(groups, r.Group)
			}
			gateways[r.Group] = r.Gateway
		}
	}
	ids := nexthopIDs(groups)
	nhs := make([]nexthop, 0, len(groups))
	for _, g := range groups {
		nhs = append(nhs, nexthop{id: ids[g], gateway: gateways[g], link: link})
	}
	return nhs, ids
}

// wantedRoutes are d's routes of a steering table, sorted, through the
// groups' nexthops ids.
func wantedRoutes(d policy.Desired, ids map[string]uint32, proto uint8) []kroute {
	src := d.Src.As4()
	out := make([]kroute, 0, len(d.Routes)+len(ids))
	for _, r := range d.Routes {
		kr := kroute{dst: r.Prefix.Addr().As4(), bits: uint8(r.Prefix.Bits()), proto: proto}
		switch r.Kind {
		case policy.Via:
			kr.typ, kr.nh, kr.src = unix.RTN_UNICAST, ids[r.Group], src
			// The kernel deletes a route with its link when the link goes
			// down; this one, behind it in the same table, has no link and
			// stays: until the router reacts, the prefix fails closed
			// instead of falling through to main and the public address.
			out = append(out, kroute{dst: kr.dst, bits: kr.bits, proto: proto, typ: unix.RTN_UNREACHABLE, metric: guardMetric})
		case policy.Throw:
			kr.typ = unix.RTN_THROW
		case policy.Unreachable:
			kr.typ = unix.RTN_UNREACHABLE
		}
		out = append(out, kr)
	}
	return sortRoutes(out)
}

// guardMetric ranks the fail-closed route behind the steered one.
const guardMetric = 1024
