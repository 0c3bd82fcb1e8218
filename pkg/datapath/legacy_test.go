package datapath

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
)

// The old operator's routes (pyroute2's "DST via GW" in main, proto boot)
// for a StaticRoute's destinations and gateway are removed; everything
// else in main stays: another gateway, another prefix length, a route not
// named by any StaticRoute, the default route, connected routes.
func TestRemoveLegacyRoutes(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	for _, r := range [][]string{
		{"192.0.2.7", "via", "198.51.100.4", "proto", "boot"},                   // primary's: goes
		{"198.19.0.0/16", "via", "198.51.100.4", "proto", "boot"},               // primary's: goes
		{"192.0.2.9", "via", "198.51.100.12", "proto", "static"},                // secondary's: goes
		{"192.0.2.8", "via", "198.51.100.4"},                                    // no StaticRoute names it
		{"198.19.1.0/24", "via", "198.51.100.4"},                                // inside a destination, not one
		{"203.0.113.200", "via", "198.51.100.9", "proto", "boot"},               // a destination via another gateway
		{"203.0.113.201", "via", "198.51.100.4", "proto", "146", "metric", "7"}, // ours (our protocol)
	} {
		n.IP(t, append([]string{"route", "add"}, r...)...)
	}
	routes := []*v1.StaticRoute{
		policytest.Route("primary", "", "198.51.100.4", 0, "192.0.2.7", "198.19.0.0/16", "203.0.113.201"),
		policytest.Route("secondary", "primary", "198.51.100.12", time.Minute, "192.0.2.9"),
		policytest.Route("other", "", "198.51.100.12", 0, "203.0.113.200"),
	}
	before := n.IP(t, "route", "show", "table", "main")
	removed, err := k.RemoveLegacyRoutes(policy.LegacyRoutes(routes))
	n.Must(t, err)
	var got []string
	for _, r := range removed {
		got = append(got, r.String())
	}
	if strings.Join(got, ", ") != "192.0.2.7/32 via 198.51.100.4, 192.0.2.9/32 via 198.51.100.12, 198.19.0.0/16 via 198.51.100.4" {
		t.Fatalf("removed %v", got)
	}
	after := n.IP(t, "route", "show", "table", "main")
	for _, keep := range []string{"default via 203.0.113.1", "192.0.2.8 via", "198.19.1.0/24 via", "203.0.113.200 via 198.51.100.9", "203.0.113.201 via 198.51.100.4 dev vpc0 proto 146", "198.51.100.0/24 dev vpc0"} {
		if !strings.Contains(after, keep) {
			t.Errorf("%q was removed:\nbefore\n%s\nafter\n%s", keep, before, after)
		}
	}
	if removed, err := k.RemoveLegacyRoutes(policy.LegacyRoutes(routes)); err != nil || len(removed) != 0 {
		t.Fatalf("twice: removed %v, %v", removed, err)
	}
}
