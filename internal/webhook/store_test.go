package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/validate"
)

func cfg() validate.Config {
	return validate.Config{VPC: []netip.Prefix{netip.MustParsePrefix("10.116.0.0/20")}}
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func sr(name, group, gw string, dests ...string) *v1.StaticRoute {
	return &v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0)},
		Spec:       v1.StaticRouteSpec{Destinations: dests, Gateway: gw, Group: group},
	}
}

// fakeClock is a settable clock for reservation expiry.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newStore(c *fakeClock) *Store {
	s := NewStore(10 * time.Second)
	s.now = c.now
	return s
}

func TestStore(t *testing.T) {
	a := sr("a", "", "10.116.0.4", "203.0.113.0/24")
	b := sr("b", "", "10.116.0.12", "203.0.113.7")
	tests := map[string]struct {
		steps func(s *Store, c *fakeClock)
		// wantB is whether b is admitted after the steps.
		wantB bool
	}{
		"a route admitted but not yet cached blocks an overlapping create": {
			steps: func(s *Store, _ *fakeClock) { mustAdmit(t, s, a, false) },
			wantB: false,
		},
		"a dry-run admission reserves nothing": {
			steps: func(s *Store, _ *fakeClock) { mustAdmit(t, s, a, true) },
			wantB: true,
		},
		"a reservation expires when the object never shows up": {
			steps: func(s *Store, c *fakeClock) { mustAdmit(t, s, a, false); c.t = c.t.Add(11 * time.Second) },
			wantB: true,
		},
		"once the cache shows the object, it blocks for as long as it exists": {
			steps: func(s *Store, c *fakeClock) {
				mustAdmit(t, s, a, false)
				s.Upsert(a)
				c.t = c.t.Add(time.Hour)
			},
			wantB: false,
		},
		"a deleted route blocks nothing": {
			steps: func(s *Store, c *fakeClock) {
				s.Upsert(a)
				s.Delete("a")
			},
			wantB: true,
		},
		"a route being deleted (kopf's finalizer still on it) blocks nothing": {
			steps: func(s *Store, c *fakeClock) {
				gone := a.DeepCopy()
				gone.DeletionTimestamp = &metav1.Time{Time: t0}
				gone.Finalizers = []string{"kopf.zalando.org/KopfFinalizerMarker"}
				s.Upsert(gone)
			},
			wantB: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &fakeClock{t: t0}
			s := newStore(c)
			tc.steps(s, c)
			res, ok := s.Admit(context.Background(), cfg(), b, nil, false)
			if !ok {
				t.Fatal("store not synced")
			}
			if got := len(res.Errors) == 0; got != tc.wantB {
				t.Fatalf("b admitted = %v, want %v (errors %v)", got, tc.wantB, res.Errors)
			}
			if !tc.wantB && !strings.Contains(res.Errors.ToAggregate().Error(), `StaticRoute "a"`) {
				t.Fatalf("the rejection does not name a: %v", res.Errors)
			}
		})
	}
}

func TestStoreReservationClearedWhenCacheCatchesUp(t *testing.T) {
	s := newStore(&fakeClock{t: t0})
	a := sr("a", "", "10.116.0.4", "203.0.113.0/24")
	mustAdmit(t, s, a, false)
	if s.Reservations() != 1 {
		t.Fatalf("reservations = %d, want 1", s.Reservations())
	}
	s.Upsert(a)
	if s.Reservations() != 0 {
		t.Fatalf("reservations = %d after the cache showed the object, want 0", s.Reservations())
	}
}

func TestStoreRefusesToJudgeBeforeSync(t *testing.T) {
	s := newStore(&fakeClock{t: t0})
	s.SetSynced(func() bool { return false })
	if _, ok := s.Admit(context.Background(), cfg(), sr("a", "", "10.116.0.4", "203.0.113.7"), nil, false); ok {
		t.Fatal("admitted before the cache synced")
	}
}

func mustAdmit(t *testing.T, s *Store, r *v1.StaticRoute, dryRun bool) {
	t.Helper()
	res, ok := s.Admit(context.Background(), cfg(), r, nil, dryRun)
	if !ok || len(res.Errors) > 0 {
		t.Fatalf("admit %s: ok=%v %v", r.Name, ok, res.Errors)
	}
}

// The informer's events reach the store: an added route blocks an
// overlapping one of another group; its delete, even one only a relist
// saw (a tombstone), frees the addresses.
func TestFeedKeepsTheStoreUpToDate(t *testing.T) {
	s := newStore(&fakeClock{t: t0})
	s.SetSynced(func() bool { return true })
	feed := s.Feed()
	a := sr("a", "", "10.116.0.4", "203.0.113.0/24")
	b := sr("b", "", "10.116.0.12", "203.0.113.7")
	feed.OnAdd(a, true)
	if res, ok := s.Admit(context.Background(), cfg(), b, nil, true); !ok || len(res.Errors) == 0 {
		t.Fatalf("b overlaps a, which the informer added: %v", res.Errors)
	}
	moved := sr("a", "", "10.116.0.4", "198.51.100.0/24")
	feed.OnUpdate(a, moved)
	if res, ok := s.Admit(context.Background(), cfg(), b, nil, true); !ok || len(res.Errors) != 0 {
		t.Fatalf("a moved away: %v", res.Errors)
	}
	feed.OnUpdate(moved, a)
	feed.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "a", Obj: a})
	if res, ok := s.Admit(context.Background(), cfg(), b, nil, true); !ok || len(res.Errors) != 0 {
		t.Fatalf("a is gone: %v", res.Errors)
	}
}

// apiServer is what a live read finds: the routes it holds, by name.
type apiServer struct {
	routes map[string]*v1.StaticRoute
	err    error
	reads  []string
}

func (a *apiServer) get(_ context.Context, name string) (*v1.StaticRoute, error) {
	a.reads = append(a.reads, name)
	if a.err != nil {
		return nil, a.err
	}
	return a.routes[name], nil
}

// A refusal that rests on other routes is confirmed with one live read
// of them: what the API server does not hold refuses nothing (a stale
// cache, a forged or failed reservation once its grace is over); what it
// holds still refuses. A refusal for the route's own faults reads nothing.
func TestStoreConfirmsRefusalsWithTheAPIServer(t *testing.T) {
	a := sr("a", "", "10.116.0.4", "203.0.113.0/24")
	b := sr("b", "", "10.116.0.12", "203.0.113.7")
	tests := map[string]struct {
		steps func(s *Store, api *apiServer, c *fakeClock)
		wantB bool
		reads string
	}{
		"the cache missed a delete: admitted": {
			steps: func(s *Store, _ *apiServer, _ *fakeClock) { s.Upsert(a) },
			wantB: true, reads: "a",
		},
		"the API server holds it: refused": {
			steps: func(s *Store, api *apiServer, _ *fakeClock) { s.Upsert(a); api.routes["a"] = a },
			wantB: false, reads: "a",
		},
		"the API server holds it being deleted: admitted": {
			steps: func(s *Store, api *apiServer, _ *fakeClock) {
				s.Upsert(a)
				gone := a.DeepCopy()
				gone.DeletionTimestamp = &metav1.Time{Time: t0}
				api.routes["a"] = gone
			},
			wantB: true, reads: "a",
		},
		"the API server holds it narrowed: admitted": {
			steps: func(s *Store, api *apiServer, _ *fakeClock) {
				s.Upsert(a)
				api.routes["a"] = sr("a", "", "10.116.0.4", "198.51.100.0/24")
			},
			wantB: true, reads: "a",
		},
		"a reservation within its grace still blocks (a racing create)": {
			steps: func(s *Store, _ *apiServer, c *fakeClock) { mustAdmit(t, s, a, false); c.t = c.t.Add(time.Second) },
			wantB: false, reads: "a",
		},
		"a reservation past its grace whose object never came (a forged review) blocks nothing": {
			steps: func(s *Store, _ *apiServer, c *fakeClock) { mustAdmit(t, s, a, false); c.t = c.t.Add(3 * time.Second) },
			wantB: true, reads: "a",
		},
		"the API server cannot be read: the refusal stands": {
			steps: func(s *Store, api *apiServer, _ *fakeClock) { s.Upsert(a); api.err = errors.New("connection refused") },
			wantB: false, reads: "a",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &fakeClock{t: t0}
			s := newStore(c)
			api := &apiServer{routes: map[string]*v1.StaticRoute{}}
			s.Live = api.get
			tc.steps(s, api, c)
			api.reads = nil
			res, ok := s.Admit(context.Background(), cfg(), b, nil, false)
			if !ok || (len(res.Errors) == 0) != tc.wantB {
				t.Fatalf("b admitted: %t (%v), want %t", len(res.Errors) == 0, res.Errors, tc.wantB)
			}
			if got := strings.Join(api.reads, " "); got != tc.reads {
				t.Errorf("live reads %q, want %q", got, tc.reads)
			}
		})
	}
	t.Run("a refusal for the route's own fault reads nothing", func(t *testing.T) {
		s := newStore(&fakeClock{t: t0})
		api := &apiServer{routes: map[string]*v1.StaticRoute{}}
		s.Live = api.get
		s.Upsert(a)
		bad := sr("bad", "", "192.0.2.1", "203.0.113.7") // outside the VPC, and overlapping a
		if res, _ := s.Admit(context.Background(), cfg(), bad, nil, false); len(res.Errors) == 0 || len(api.reads) != 0 {
			t.Fatalf("errors %v, live reads %v: want refused with none", res.Errors, api.reads)
		}
	})
}

// Reservations are bounded: past MaxReserved the oldest gives way, so a
// flood of forged reviews with new names cannot grow the webhook's memory.
func TestStoreBoundsReservations(t *testing.T) {
	c := &fakeClock{t: t0}
	s := newStore(c)
	s.MaxReserved = 3
	for i := range 5 {
		c.t = c.t.Add(time.Millisecond)
		mustAdmit(t, s, sr(fmt.Sprintf("r%d", i), "", "10.116.0.4", fmt.Sprintf("203.0.113.%d", i)), false)
	}
	if n := s.Reservations(); n != 3 {
		t.Fatalf("%d reservations, want 3", n)
	}
	// The oldest two went: their prefixes are free again.
	mustAdmit(t, s, sr("again", "", "10.116.0.4", "203.0.113.0"), false)
}
