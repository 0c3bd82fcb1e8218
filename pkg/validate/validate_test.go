package validate

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// The tutorial's layout. No traffic is ever sent to these addresses.
func tutorialConfig() Config {
	return Config{
		VPC:        []netip.Prefix{netip.MustParsePrefix("10.116.0.0/20")},
		Pod:        []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
		Service:    []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16")},
		APIServers: []netip.Addr{netip.MustParseAddr("203.0.113.200")},
	}
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func route(name, group, gw string, created time.Time, dests ...string) *v1.StaticRoute {
	return &v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1.StaticRouteSpec{Destinations: dests, Gateway: gw, Group: group},
	}
}

func indexOf(routes ...*v1.StaticRoute) *Index {
	x := NewIndex()
	for _, r := range routes {
		x.Put(RouteOf(r))
	}
	return x
}

// wantErr is one expected error: its field path and a piece of its text.
type wantErr struct{ path, text string }

func TestStaticRoute(t *testing.T) {
	primary := route("primary", "", "10.116.0.4", t0, "34.160.111.145")
	tests := map[string]struct {
		sr, old  *v1.StaticRoute
		others   []*v1.StaticRoute
		errs     []wantErr
		warnings []string
	}{
		"the tutorial's primary.yaml is valid": {
			sr: route("primary", "", "10.116.0.4", t0, "34.160.111.145"),
		},
		"a failover member of the same group may repeat the destinations": {
			sr:     route("secondary", "primary", "10.116.0.12", t0.Add(time.Minute), "34.160.111.145"),
			others: []*v1.StaticRoute{primary},
		},
		"the old tutorial's secondary.yaml is rejected while primary exists, suggesting spec.group": {
			sr:     route("secondary", "", "10.116.0.12", t0.Add(time.Minute), "34.160.111.145"),
			others: []*v1.StaticRoute{primary},
			errs:   []wantErr{{"spec.destinations[0]", `overlaps 34.160.111.145/32 of StaticRoute "primary" (group "primary")`}, {"spec.destinations[0]", "set spec.group: primary"}},
		},
		"a prefix containing another group's address overlaps it": {
			sr:     route("wide", "", "10.116.0.12", t0.Add(time.Minute), "34.160.0.0/16"),
			others: []*v1.StaticRoute{primary},
			errs:   []wantErr{{"spec.destinations[0]", `StaticRoute "primary"`}},
		},
		"an address inside another group's prefix overlaps it": {
			sr:     route("narrow", "", "10.116.0.12", t0.Add(time.Minute), "198.51.100.7"),
			others: []*v1.StaticRoute{route("wide", "", "10.116.0.4", t0, "198.51.100.0/24")},
			errs:   []wantErr{{"spec.destinations[0]", `198.51.100.0/24 of StaticRoute "wide"`}},
		},
		"an update is not compared with its own stored version": {
			sr:     route("primary", "", "10.116.0.4", t0, "34.160.111.145", "198.51.100.0/24"),
			old:    primary,
			others: []*v1.StaticRoute{primary},
		},
		"a malformed address is rejected": {
			sr:   route("r", "", "10.116.0.4", t0, "34.160.111"),
			errs: []wantErr{{"spec.destinations[0]", "must be an IPv4 address (203.0.113.7) or CIDR"}},
		},
		"a non-canonical CIDR is rejected with the canonical form": {
			sr:   route("r", "", "10.116.0.4", t0, "198.51.100.7/24"),
			errs: []wantErr{{"spec.destinations[0]", "did you mean 198.51.100.0/24?"}},
		},
		"an IPv6 destination is rejected": {
			sr:   route("r", "", "10.116.0.4", t0, "2001:db8::/32"),
			errs: []wantErr{{"spec.destinations[0]", "must be IPv4"}},
		},
		"an IPv4-mapped IPv6 destination is rejected": {
			sr:   route("r", "", "10.116.0.4", t0, "::ffff:192.0.2.7"),
			errs: []wantErr{{"spec.destinations[0]", "must be IPv4"}},
		},
		"an IPv6 gateway is rejected": {
			sr:   route("r", "", "2001:db8::1", t0, "198.51.100.7"),
			errs: []wantErr{{"spec.gateway", "must be IPv4"}},
		},
		"a bare 0.0.0.0 asks whether 0.0.0.0/0 was meant": {
			sr:   route("r", "", "10.116.0.4", t0, "0.0.0.0"),
			errs: []wantErr{{"spec.destinations[0]", "did you mean 0.0.0.0/0?"}},
		},
		"0.0.0.0/0 is allowed with a warning that nodes carve out the cluster": {
			sr:       route("r", "", "10.116.0.4", t0, "0.0.0.0/0"),
			warnings: []string{"contains the VPC CIDR 10.116.0.0/20, the pod CIDR 10.244.0.0/16, the service CIDR 10.245.0.0/16, the API server address 203.0.113.200", "loopback 127.0.0.0/8"},
		},
		"a gateway outside the VPC is rejected": {
			sr:   route("r", "", "198.51.100.1", t0, "203.0.113.7"),
			errs: []wantErr{{"spec.gateway", "is outside the VPC (10.116.0.0/20)"}},
		},
		"the VPC's network address is not a gateway": {
			sr:   route("r", "", "10.116.0.0", t0, "203.0.113.7"),
			errs: []wantErr{{"spec.gateway", "network address of the VPC CIDR 10.116.0.0/20"}},
		},
		"the VPC's broadcast address is not a gateway": {
			sr:   route("r", "", "10.116.15.255", t0, "203.0.113.7"),
			errs: []wantErr{{"spec.gateway", "broadcast address"}},
		},
		"the gateway is not also a destination": {
			sr:   route("r", "", "10.116.0.4", t0, "10.116.0.4"),
			errs: []wantErr{{"spec.gateway", "must not also be a destination (spec.destinations[0])"}, {"spec.destinations[0]", "inside the VPC CIDR"}},
		},
		"an empty destination list is rejected": {
			sr:   route("r", "", "10.116.0.4", t0),
			errs: []wantErr{{"spec.destinations", "Required value"}},
		},
		"a destination list over the limit is rejected": {
			sr:   route("r", "", "10.116.0.4", t0, manyDestinations(v1.MaxDestinations+1)...),
			errs: []wantErr{{"spec.destinations", "must have at most 1024 items"}},
		},
		"a missing gateway is rejected": {
			sr:   route("r", "", "", t0, "203.0.113.7"),
			errs: []wantErr{{"spec.gateway", "Required value"}},
		},
		"a duplicate destination is named at its second place": {
			sr:   route("r", "", "10.116.0.4", t0, "203.0.113.7", "198.51.100.0/24", "203.0.113.7"),
			errs: []wantErr{{"spec.destinations[2]", "Duplicate value"}},
		},
		"a destination inside another of the same route is rejected": {
			sr:   route("r", "", "10.116.0.4", t0, "192.0.2.7", "192.0.2.0/24"),
			errs: []wantErr{{"spec.destinations[0]", "lies inside 192.0.2.0/24 (spec.destinations[1])"}},
		},
		"destinations inside the VPC, pod and service CIDRs and the API server are rejected": {
			sr: route("r", "", "10.116.0.4", t0, "10.116.1.0/24", "10.244.3.4", "10.245.0.10", "203.0.113.200"),
			errs: []wantErr{
				{"spec.destinations[0]", "inside the VPC CIDR 10.116.0.0/20"},
				{"spec.destinations[1]", "inside the pod CIDR 10.244.0.0/16"},
				{"spec.destinations[2]", "inside the service CIDR 10.245.0.0/16"},
				{"spec.destinations[3]", "inside the API server address 203.0.113.200"},
			},
		},
		"special ranges are rejected, the metadata service among them": {
			sr: route("r", "", "10.116.0.4", t0, "127.0.0.1", "169.254.169.254", "224.0.0.0/24", "0.1.2.3", "255.255.255.255"),
			errs: []wantErr{
				{"spec.destinations[0]", "loopback"},
				{"spec.destinations[1]", "metadata service"},
				{"spec.destinations[2]", "multicast"},
				{"spec.destinations[3]", "this-network"},
				{"spec.destinations[4]", "broadcast"},
			},
		},
		"a special gateway is rejected": {
			sr:   route("r", "", "169.254.169.254", t0, "203.0.113.7"),
			errs: []wantErr{{"spec.gateway", "link-local"}},
		},
		"changing the gateway in place is rejected with the failover recipe": {
			sr:   route("primary", "", "10.116.0.12", t0, "34.160.111.145"),
			old:  primary,
			errs: []wantErr{{"spec.gateway", "create a new StaticRoute with spec.group: primary"}},
		},
		"changing the group is rejected": {
			sr:   route("primary", "other", "10.116.0.4", t0, "34.160.111.145"),
			old:  primary,
			errs: []wantErr{{"spec.group", "is immutable"}},
		},
		"an empty group may be set to the route's own name": {
			sr:  route("primary", "primary", "10.116.0.4", t0, "34.160.111.145"),
			old: primary,
		},
		"a group that is not a DNS subdomain is rejected": {
			sr:   route("r", "Not_A_Name", "10.116.0.4", t0, "203.0.113.7"),
			errs: []wantErr{{"spec.group", "RFC 1123 subdomain"}},
		},
		"a bad nodeSelector is rejected": {
			sr: func() *v1.StaticRoute {
				r := route("r", "", "10.116.0.4", t0, "203.0.113.7")
				r.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": "x"}}
				return r
			}(),
			errs: []wantErr{{"spec.nodeSelector.matchLabels", "name part must consist of alphanumeric characters"}},
		},
		"every error is reported at once": {
			sr: route("r", "", "2001:db8::1", t0, "0.0.0.0", "198.51.100.7/24"),
			errs: []wantErr{
				{"spec.destinations[0]", "did you mean 0.0.0.0/0?"},
				{"spec.destinations[1]", "did you mean 198.51.100.0/24?"},
				{"spec.gateway", "must be IPv4"},
			},
		},
		"a new member that drops the active member's destinations is warned about": {
			sr:       route("secondary", "primary", "10.116.0.12", t0.Add(time.Minute), "34.160.111.145"),
			others:   []*v1.StaticRoute{route("primary", "", "10.116.0.4", t0, "34.160.111.145", "198.51.100.0/24")},
			warnings: []string{`does not route 198.51.100.0/24, which its active member "primary" routes now`},
		},
		"a new member covering the active member's destinations with a wider prefix gets no warning": {
			sr:     route("secondary", "primary", "10.116.0.12", t0.Add(time.Minute), "34.160.0.0/16"),
			others: []*v1.StaticRoute{primary},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := StaticRoute(tutorialConfig(), indexOf(tc.others...), tc.sr, tc.old)
			got := map[string][]string{}
			for _, e := range res.Errors {
				got[e.Field] = append(got[e.Field], e.Error())
			}
			for _, w := range tc.errs {
				found := false
				for _, msg := range got[w.path] {
					if strings.Contains(msg, w.text) {
						found = true
					}
				}
				if !found {
					t.Errorf("want an error at %s containing %q; got %v", w.path, w.text, res.Errors)
				}
			}
			if len(tc.errs) == 0 && len(res.Errors) > 0 {
				t.Errorf("want no errors; got %v", res.Errors)
			}
			for path := range got {
				expected := false
				for _, w := range tc.errs {
					expected = expected || w.path == path
				}
				if !expected {
					t.Errorf("unexpected error at %s: %v", path, got[path])
				}
			}
			all := strings.Join(res.Warnings, "\n")
			for _, w := range tc.warnings {
				if !strings.Contains(all, w) {
					t.Errorf("want a warning containing %q; got %q", w, res.Warnings)
				}
			}
			if len(tc.warnings) == 0 && len(res.Warnings) > 0 {
				t.Errorf("want no warnings; got %q", res.Warnings)
			}
		})
	}
}

func manyDestinations(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("198.18.%d.%d", i/256, i%256)
	}
	return out
}

// 0.0.0.0/0 against routes of several groups: each route is named once,
// with all its overlapping prefixes, and no single spec.group is offered.
func TestOverlapWithSeveralGroupsNamesEachRouteOnce(t *testing.T) {
	others := indexOf(
		route("alpha", "", "10.116.0.4", t0, "34.160.111.145", "198.51.100.0/24"),
		route("beta", "", "10.116.0.12", t0.Add(time.Second), "192.0.2.0/24"),
	)
	res := StaticRoute(tutorialConfig(), others, route("everything", "", "10.116.0.4", t0.Add(time.Minute), "0.0.0.0/0"), nil)
	if len(res.Errors) != 1 {
		t.Fatalf("want one error; got %v", res.Errors)
	}
	msg := res.Errors[0].Error()
	for _, want := range []string{
		`34.160.111.145/32, 198.51.100.0/24 of StaticRoute "alpha" (group "alpha")`,
		`192.0.2.0/24 of StaticRoute "beta" (group "beta")`,
		"other groups (alpha, beta)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Count(msg, `StaticRoute "alpha"`) != 1 || strings.Contains(msg, "set spec.group") {
		t.Errorf("alpha named more than once, or one group suggested:\n%s", msg)
	}
}

// An API server address on loopback (a kubeconfig's 127.0.0.1) is inside a
// special range already: the warning for 0.0.0.0/0 does not name it.
func TestLoopbackAPIServerIsNotWarnedAbout(t *testing.T) {
	cfg := tutorialConfig()
	cfg.APIServers = append(cfg.APIServers, netip.MustParseAddr("127.0.0.1"))
	res := StaticRoute(cfg, NewIndex(), route("everything", "", "10.116.0.4", t0, "0.0.0.0/0"), nil)
	all := strings.Join(res.Warnings, "\n")
	if strings.Contains(all, "127.0.0.1") || !strings.Contains(all, "the API server address 203.0.113.200") {
		t.Fatalf("warnings: %q", res.Warnings)
	}
}

// Blamed names exactly the routes of other groups that a refusal rests
// on: not the route itself, not members of its own group.
func TestBlamed(t *testing.T) {
	idx := NewIndex()
	for _, r := range []Route{
		{Name: "web", Group: "web", Destinations: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
		{Name: "web-b", Group: "web", Destinations: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/25")}},
		{Name: "db", Group: "db", Destinations: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}},
		{Name: "far", Group: "far", Destinations: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		{Name: "new", Group: "new", Destinations: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
	} {
		idx.Put(r)
	}
	sr := &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: "new"}, Spec: v1.StaticRouteSpec{Destinations: []string{"203.0.113.0/26", "bad"}, Gateway: "10.116.0.4"}}
	if got := strings.Join(Blamed(idx, sr), " "); got != "db web web-b" {
		t.Errorf("a new group over 203.0.113.0/26: blamed %q, want db web web-b", got)
	}
	sr.Spec.Group = "web"
	if got := strings.Join(Blamed(idx, sr), " "); got != "db" {
		t.Errorf("a member of web: blamed %q, want db", got)
	}
}
