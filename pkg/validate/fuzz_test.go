package validate

import (
	"net/netip"
	"strings"
	"testing"
)

func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"34.160.111.145", "0.0.0.0/0", "0.0.0.0", "198.51.100.7/24", "::1", "1.2.3.4/33", "01.2.3.4", "1.2.3.4/", " 1.2.3.4", "::ffff:1.2.3.4", "1.2.3.4%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseDestination(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		// What parses is a canonical IPv4 prefix that prints back the
		// same way, so nodes and the webhook agree on it.
		if !p.Addr().Is4() || p.Masked() != p {
			t.Fatalf("%q parsed to %v, not canonical IPv4", s, p)
		}
		back := p.String()
		if !strings.Contains(s, "/") {
			back = p.Addr().String()
		}
		if back != s {
			t.Fatalf("%q parsed to %v, which prints as %q", s, p, back)
		}
		if _, err := netip.ParsePrefix(p.String()); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzStaticRoute checks that no spec makes validation panic, and that an
// accepted spec parses completely: what the webhook admits, a node applies.
func FuzzStaticRoute(f *testing.F) {
	f.Add("34.160.111.145", "198.51.100.0/24", "10.116.0.4", "")
	f.Add("0.0.0.0", "::1", "10.116.0.0", "Bad_Group")
	f.Add("0.0.0.0/0", "34.160.111.145", "10.116.0.12", "primary")
	others := indexOf(route("primary", "", "10.116.0.4", t0, "34.160.111.145", "192.0.2.0/25"))
	f.Fuzz(func(t *testing.T, d1, d2, gw, group string) {
		sr := route("fuzz", group, gw, t0, d1, d2)
		res := StaticRoute(tutorialConfig(), others, sr, nil)
		if len(res.Errors) > 0 {
			return
		}
		r := RouteOf(sr)
		if len(r.Destinations) != 2 || !r.Gateway.IsValid() {
			t.Fatalf("admitted %+v but it parses to %+v", sr.Spec, r)
		}
		if r.Destinations[0].Overlaps(r.Destinations[1]) {
			t.Fatalf("admitted overlapping destinations %v", r.Destinations)
		}
	})
}
