package datapath

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/staticroute/staticroute/pkg/policy"
)

// isLegacy says whether a main-table route is one of legacy: a plain
// unicast route to exactly that destination via exactly that gateway,
// one path, not ours. Anything else (another gateway, a wider or
// narrower prefix, multipath, another table) is not the old operator's
// to remove.
func isLegacy(r netlink.Route, legacy map[policy.LegacyRoute]bool, ourProto int) (policy.LegacyRoute, bool) {
	if r.Table != unix.RT_TABLE_MAIN || r.Type != unix.RTN_UNICAST || len(r.MultiPath) > 0 || int(r.Protocol) == ourProto || r.Dst == nil || r.Gw == nil {
		return policy.LegacyRoute{}, false
	}
	dst, ok1 := netip.AddrFromSlice(r.Dst.IP.To4())
	gw, ok2 := netip.AddrFromSlice(r.Gw.To4())
	ones, bits := r.Dst.Mask.Size()
	if !ok1 || !ok2 || bits != 32 {
		return policy.LegacyRoute{}, false
	}
	l := policy.LegacyRoute{Dst: netip.PrefixFrom(dst, ones), Gateway: gw}
	return l, legacy[l]
}

// RemoveLegacyRoutes deletes the main table's routes that are exactly one
// of legacy and returns what it deleted.
func (k *Kernel) RemoveLegacyRoutes(legacy map[policy.LegacyRoute]bool) ([]policy.LegacyRoute, error) {
	if len(legacy) == 0 {
		return nil, nil
	}
	routes, err := consistent(func() ([]netlink.Route, error) {
		return k.NL.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("listing the main table: %w", err)
	}
	var removed []policy.LegacyRoute
	for _, r := range routes {
		l, ok := isLegacy(r, legacy, k.Opts.Protocol)
		if !ok {
			continue
		}
		if err := k.NL.RouteDel(&r); err != nil && !isGone(err) {
			return removed, fmt.Errorf("deleting the old operator's route %s: %w", l, err)
		}
		removed = append(removed, l)
	}
	return removed, nil
}
