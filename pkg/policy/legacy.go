package policy

import (
	"net/netip"
	"slices"

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
