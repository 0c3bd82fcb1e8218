package validate

import (
	"net/netip"
	"slices"
	"testing"
)

func TestCoversAndComparePrefix(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		outer, inner string
		want         bool
	}{
		{"192.0.2.0/24", "192.0.2.128/25", true},
		{"192.0.2.0/24", "192.0.2.0/24", true},
		{"192.0.2.128/25", "192.0.2.0/24", false}, // inner is larger
		{"192.0.2.0/25", "192.0.2.128/25", false}, // disjoint
		{"0.0.0.0/0", "203.0.113.7/32", true},
	} {
		if got := Covers(p(tc.outer), p(tc.inner)); got != tc.want {
			t.Errorf("Covers(%s, %s) = %t, want %t", tc.outer, tc.inner, got, tc.want)
		}
	}
	ps := []netip.Prefix{p("192.0.2.128/25"), p("198.18.0.0/15"), p("192.0.2.0/25"), p("192.0.2.0/24"), p("0.0.0.0/0")}
	slices.SortFunc(ps, ComparePrefix)
	want := []netip.Prefix{p("0.0.0.0/0"), p("192.0.2.0/24"), p("192.0.2.0/25"), p("192.0.2.128/25"), p("198.18.0.0/15")}
	if !slices.Equal(ps, want) {
		t.Errorf("sorted %v, want %v: a prefix before the ones it covers", ps, want)
	}
}
