package policy_test

import (
	"maps"
	"net/netip"
	"strings"
	"testing"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
)

// Compute names the old operator's routes to remove only when told to
// adopt them and the main table holds a route to one of their
// destinations (ReadNode's MainVia): once they are gone, a reconcile
// costs no dump of main.
func TestComputeNamesLegacyRoutesToRemove(t *testing.T) {
	route := policytest.Route("egress", "", "198.51.100.4", 0, "192.0.2.0/24", "198.19.0.0/16")
	want := map[policy.LegacyRoute]bool{
		{Dst: netip.MustParsePrefix("192.0.2.0/24"), Gateway: netip.MustParseAddr("198.51.100.4")}:  true,
		{Dst: netip.MustParsePrefix("198.19.0.0/16"), Gateway: netip.MustParseAddr("198.51.100.4")}: true,
	}
	for name, tc := range map[string]struct {
		adopt   bool
		mainVia []string
		want    map[policy.LegacyRoute]bool
	}{
		"adopting, main holds one":          {adopt: true, mainVia: []string{"192.0.2.0/24"}, want: want},
		"adopting, main holds none of them": {adopt: true, mainVia: []string{"203.0.113.0/24"}},
		"not adopting":                      {mainVia: []string{"192.0.2.0/24"}},
	} {
		t.Run(name, func(t *testing.T) {
			in := policytest.Input(route)
			in.AdoptLegacy = tc.adopt
			for _, p := range tc.mainVia {
				in.Node.MainVia = append(in.Node.MainVia, netip.MustParsePrefix(p))
			}
			d := policy.Compute(in)
			if !maps.Equal(d.Legacy, tc.want) {
				t.Errorf("Legacy = %v, want %v", d.Legacy, tc.want)
			}
			if len(tc.want) > 0 && !strings.Contains(d.String(), "old operator's route to remove from main: 192.0.2.0/24 via 198.51.100.4\n") {
				t.Errorf("the state does not print it:\n%s", d)
			}
		})
	}
}

// The main table's via-routes say whether a dump is worth it: a
// destination of a StaticRoute among them, not merely a route via its
// gateway to something else.
func TestMayHoldLegacy(t *testing.T) {
	legacy := policy.LegacyRoutes([]*v1.StaticRoute{policytest.Route("primary", "", "198.51.100.4", 0, "192.0.2.7", "198.19.0.0/16")})
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
		if got := policy.MayHoldLegacy(ps, legacy); got != tc.want {
			t.Errorf("main via %v: %v, want %v", tc.mainVia, got, tc.want)
		}
	}
}
