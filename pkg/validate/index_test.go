package validate

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func randomPrefix(rng *rand.Rand) netip.Prefix {
	// Inside 198.18.0.0/15 so that nesting is frequent.
	v := 198<<24 | 18<<16 | rng.Uint32N(1<<17)
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	p, _ := a.Prefix(15 + rng.IntN(18))
	return p
}

func overlap(a, b netip.Prefix) bool { return a.Overlaps(b) }

// The index must find exactly the overlaps a scan of every route finds,
// after any mix of puts, replacements and deletes.
func TestIndexOverlapsMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := NewIndex()
	live := map[string]Route{}
	for step := range 3000 {
		name := fmt.Sprintf("r%d", rng.IntN(200))
		if rng.IntN(4) == 0 {
			x.Delete(name)
			delete(live, name)
		} else {
			r := Route{Name: name, Group: fmt.Sprintf("g%d", rng.IntN(20)), Created: t0.Add(time.Duration(step) * time.Second)}
			for range 1 + rng.IntN(4) {
				r.Destinations = append(r.Destinations, randomPrefix(rng))
			}
			x.Put(r)
			live[name] = r
		}
		q := randomPrefix(rng)
		var got, want []string
		x.Overlaps(q, func(p netip.Prefix, route string) bool {
			got = append(got, p.String()+" "+route)
			return true
		})
		for _, r := range live {
			for _, p := range r.Destinations {
				if overlap(p, q) {
					want = append(want, p.String()+" "+r.Name)
				}
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: overlaps of %s\n got %v\nwant %v", step, q, got, want)
		}
	}
	if x.Len() != len(live) {
		t.Fatalf("Len = %d, want %d", x.Len(), len(live))
	}
}

func TestIndexOverlapsStopsWhenAsked(t *testing.T) {
	x := NewIndex()
	x.Put(Route{Name: "a", Destinations: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16"), netip.MustParsePrefix("198.18.1.0/24"), netip.MustParsePrefix("198.18.2.0/24")}})
	calls := 0
	x.Overlaps(netip.MustParsePrefix("198.18.0.0/15"), func(netip.Prefix, string) bool { calls++; return false })
	if calls != 1 {
		t.Fatalf("fn called %d times after returning false, want 1", calls)
	}
}

func TestActiveMemberIsNewestThenGreaterName(t *testing.T) {
	tests := map[string]struct {
		members []Route
		want    string
	}{
		"the newest member is active": {
			members: []Route{{Name: "b", Created: t0}, {Name: "a", Created: t0.Add(time.Second)}},
			want:    "a",
		},
		"members created in the same second are ordered by name": {
			members: []Route{{Name: "primary", Created: t0}, {Name: "secondary", Created: t0}},
			want:    "secondary",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, order := range [][]int{{0, 1}, {1, 0}} {
				x := NewIndex()
				for _, i := range order {
					r := tc.members[i]
					r.Group = "g"
					x.Put(r)
				}
				if got, _ := x.Active("g"); got.Name != tc.want {
					t.Errorf("order %v: active = %q, want %q", order, got.Name, tc.want)
				}
			}
		})
	}
}
