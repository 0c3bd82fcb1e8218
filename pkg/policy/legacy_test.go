package policy

import (
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
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
		sr("primary", "", "198.51.100.4", 0, "192.0.2.7", "198.19.0.0/16", "203.0.113.201"),
		sr("secondary", "primary", "198.51.100.12", time.Minute, "192.0.2.9"),
		sr("other", "", "198.51.100.12", 0, "203.0.113.200"),
	}
	before := n.IP(t, "route", "show", "table", "main")
	removed, err := k.RemoveLegacyRoutes(LegacyRoutes(routes))
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
	if removed, err := k.RemoveLegacyRoutes(LegacyRoutes(routes)); err != nil || len(removed) != 0 {
		t.Fatalf("twice: removed %v, %v", removed, err)
	}
}

// The main table's via-routes say whether a dump is worth it: a
// destination of a StaticRoute among them, not merely a route via its
// gateway to something else.
func TestMayHoldLegacy(t *testing.T) {
	legacy := LegacyRoutes([]*v1.StaticRoute{sr("primary", "", "198.51.100.4", 0, "192.0.2.7", "198.19.0.0/16")})
	for _, tc := range []struct {
		mainVia []string
		want    bool
	}{
		{nil, false},
		{[]string{"192.0.2.8/32", "198.19.1.0/24"}, false},
		{[]string{"192.0.2.8/32", "198.19.0.0/16"}, true},
		{[]string{"192.0.2.7/32"}, true},
	} {
		var ps []netip.Prefix
		for _, p := range tc.mainVia {
			ps = append(ps, netip.MustParsePrefix(p))
		}
		if got := MayHoldLegacy(ps, legacy); got != tc.want {
			t.Errorf("main via %v: %v, want %v", tc.mainVia, got, tc.want)
		}
	}
}

// Compute names the old operator's routes to remove only when told to
// adopt them and the main table holds a route to one of their
// destinations (ReadNode's MainVia): once they are gone, a reconcile
// costs no dump of main.
func TestComputeNamesLegacyRoutesToRemove(t *testing.T) {
	route := sr("egress", "", "198.51.100.4", 0, "192.0.2.0/24", "198.19.0.0/16")
	want := map[LegacyRoute]bool{
		{Dst: netip.MustParsePrefix("192.0.2.0/24"), Gateway: netip.MustParseAddr("198.51.100.4")}:  true,
		{Dst: netip.MustParsePrefix("198.19.0.0/16"), Gateway: netip.MustParseAddr("198.51.100.4")}: true,
	}
	for name, tc := range map[string]struct {
		adopt   bool
		mainVia []string
		want    map[LegacyRoute]bool
	}{
		"adopting, main holds one":          {adopt: true, mainVia: []string{"192.0.2.0/24"}, want: want},
		"adopting, main holds none of them": {adopt: true, mainVia: []string{"203.0.113.0/24"}},
		"not adopting":                      {mainVia: []string{"192.0.2.0/24"}},
	} {
		t.Run(name, func(t *testing.T) {
			in := nodeInput(route)
			in.AdoptLegacy = tc.adopt
			for _, p := range tc.mainVia {
				in.Node.MainVia = append(in.Node.MainVia, netip.MustParsePrefix(p))
			}
			d := Compute(in)
			if !maps.Equal(d.Legacy, tc.want) {
				t.Errorf("Legacy = %v, want %v", d.Legacy, tc.want)
			}
			if len(tc.want) > 0 && !strings.Contains(d.String(), "old operator's route to remove from main: 192.0.2.0/24 via 198.51.100.4\n") {
				t.Errorf("the state does not print it:\n%s", d)
			}
		})
	}
}
