package datapath

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/staticroute/staticroute/pkg/policy"
)

// isLegacy says whether a route of the main table is one of legacy: a
// plain unicast route to exactly that destination via exactly that
// gateway, one path, not ours. Anything else (another gateway, a wider
// or narrower prefix, multipath, a nexthop object, the default route) is
// not the old operator's to remove.
func isLegacy(r dumpedRoute, legacy map[policy.LegacyRoute]bool, ourProto int) (policy.LegacyRoute, bool) {
	if r.typ != unix.RTN_UNICAST || r.multipath || r.nh != 0 || int(r.proto) == ourProto || r.bits == 0 || !r.gw.Is4() {
		return policy.LegacyRoute{}, false
	}
	l := policy.LegacyRoute{Dst: netip.PrefixFrom(netip.AddrFrom4(r.dst), int(r.bits)), Gateway: r.gw}
	return l, legacy[l]
}

// RemoveLegacyRoutes deletes the main table's routes that are exactly one
// of legacy, through our one socket, and returns what it deleted.
func (k *Kernel) RemoveLegacyRoutes(legacy map[policy.LegacyRoute]bool) ([]policy.LegacyRoute, error) {
	if len(legacy) == 0 {
		return nil, nil
	}
	var found []dumpedRoute
	var removed []policy.LegacyRoute
	err := k.batch.eachRoute(unix.RT_TABLE_MAIN, func() { found, removed = found[:0], removed[:0] }, func(r dumpedRoute) {
		if l, ok := isLegacy(r, legacy, k.Opts.Protocol); ok {
			found, removed = append(found, r), append(removed, l)
		}
	})
	if err != nil || len(found) == 0 {
		return nil, err
	}
	for _, r := range found {
		// Exactly the route dumped, with its gateway: a route to the same
		// destination via another gateway is not matched.
		start := k.batch.routeAttrs(unix.RTM_DELROUTE, unix.RT_TABLE_MAIN, r.kroute)
		gw := r.gw.As4()
		k.batch.attr(unix.RTA_GATEWAY, gw[:])
		k.batch.end(start)
	}
	if err := k.batch.exchange(func(e unix.Errno) bool { return isGone(e) }); err != nil {
		return nil, fmt.Errorf("deleting the old operator's routes %v: %w", removed, err)
	}
	return removed, nil
}
