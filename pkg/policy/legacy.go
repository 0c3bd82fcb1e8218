package policy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/validate"
)

// LegacyRoute is a main-table route the old k8s-staticroute-operator
// added with pyroute2 for a StaticRoute: "DST via GW". Its DaemonSet
// leaves them behind when it is deleted, and one would silently take its
// destination over again once the StaticRoute's group is deleted.
type LegacyRoute struct {
	Dst     netip.Prefix
	Gateway netip.Addr
}

func (l LegacyRoute) String() string { return l.Dst.String() + " via " + l.Gateway.String() }

// LegacyRoutes are the routes the old operator would have added for
// routes: every destination via its route's gateway, whichever member of
// its group is active.
func LegacyRoutes(routes []*v1.StaticRoute) map[LegacyRoute]bool {
	out := map[LegacyRoute]bool{}
	for _, sr := range routes {
		r := validate.RouteOf(sr)
		if !r.Gateway.IsValid() {
			continue
		}
		for _, d := range r.Destinations {
			out[LegacyRoute{Dst: d.Masked(), Gateway: r.Gateway}] = true
		}
	}
	return out
}

// MayHoldLegacy says whether the main table's routes via a gateway
// (Node.MainVia, which ReadNode reads anyway) include a destination of
// legacy: only then is RemoveLegacyRoutes worth its own dump of the main
// table. Once the old routes are gone, a reconcile costs nothing more.
func MayHoldLegacy(mainVia []netip.Prefix, legacy map[LegacyRoute]bool) bool {
	for l := range legacy {
		if slices.Contains(mainVia, l.Dst) {
			return true
		}
	}
	return false
}

// isLegacy says whether a main-table route is one of legacy: a plain
// unicast route to exactly that destination via exactly that gateway,
// one path, not ours. Anything else (another gateway, a wider or
// narrower prefix, multipath, another table) is not the old operator's
// to remove.
func isLegacy(r netlink.Route, legacy map[LegacyRoute]bool, ourProto int) (LegacyRoute, bool) {
	if r.Table != unix.RT_TABLE_MAIN || r.Type != unix.RTN_UNICAST || len(r.MultiPath) > 0 || int(r.Protocol) == ourProto || r.Dst == nil || r.Gw == nil {
		return LegacyRoute{}, false
	}
	dst, ok1 := netip.AddrFromSlice(r.Dst.IP.To4())
	gw, ok2 := netip.AddrFromSlice(r.Gw.To4())
	ones, bits := r.Dst.Mask.Size()
	if !ok1 || !ok2 || bits != 32 {
		return LegacyRoute{}, false
	}
	l := LegacyRoute{Dst: netip.PrefixFrom(dst, ones), Gateway: gw}
	return l, legacy[l]
}

// RemoveLegacyRoutes deletes the main table's routes that are exactly one
// of legacy and returns what it deleted.
func (k *Kernel) RemoveLegacyRoutes(legacy map[LegacyRoute]bool) ([]LegacyRoute, error) {
	if len(legacy) == 0 {
		return nil, nil
	}
	routes, err := consistent(func() ([]netlink.Route, error) {
		return k.NL.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("listing the main table: %w", err)
	}
	var removed []LegacyRoute
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
