// Package webhook is the StaticRoute admission webhook: a typed validator
// that runs pkg/validate against the other routes, and a store that holds
// those routes.
package webhook

import (
	"context"
	"slices"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/validate"
)

// Store is the webhook's view of every StaticRoute: the informer cache,
// overlaid with the routes this replica admitted that the cache does not
// show yet. Without that overlay two overlapping creates in quick
// succession (kubectl apply -f dir/) would each be checked against a cache
// that lacks the other, and both would pass.
//
// Admissions are serialized by one mutex: validation takes microseconds.
//
// Neither the cache nor a reservation is trusted to refuse: the cache can
// be stale (it missed deletes during an API server outage), and a
// reservation can stand for an object that never was (a forged review,
// or a create that failed after admission). A request refused only because
// of other routes is judged again after one live read of those routes
// (Live): what the API server does not hold is dropped. A reservation
// younger than Grace stays, since its object may still be committing:
// that is what keeps two racing creates from both getting in.
type Store struct {
	// Live reads one StaticRoute from the API server, past every cache;
	// nil: refusals rest on the cache and reservations alone.
	Live func(ctx context.Context, name string) (*v1.StaticRoute, error)
	// Grace is how long a reservation blocks others when the API server
	// does not show its object: time for the object to be committed.
	Grace time.Duration
	// MaxReserved bounds the reservations held; past it, the oldest goes.
	MaxReserved int
	// LiveReads counts the live reads by result (found, gone, failed).
	LiveReads func(result string)

	mu       sync.Mutex
	index    *validate.Index
	cached   map[string]validate.Route
	reserved map[string]reservation
	ttl      time.Duration
	now      func() time.Time
	synced   func() bool
}

// reservation is an admitted route the cache has not shown yet. It expires,
// since a request can still fail after admission (another webhook, etcd).
type reservation struct {
	route   validate.Route
	at      time.Time
	expires time.Time
}

// NewStore returns an empty store whose reservations last ttl.
func NewStore(ttl time.Duration) *Store {
	return &Store{
		Grace:       2 * time.Second,
		MaxReserved: 1000,
		index:       validate.NewIndex(),
		cached:      map[string]validate.Route{},
		reserved:    map[string]reservation{},
		ttl:         ttl,
		now:         time.Now,
		synced:      func() bool { return true },
	}
}

// SetSynced tells the store how to know that its cache is complete; until
// it is, admission refuses to judge.
func (s *Store) SetSynced(f func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synced = f
}

// Upsert records what the cache shows of a route. A route being deleted
// counts as gone: nodes already treat it so.
func (s *Store) Upsert(sr *v1.StaticRoute) {
	if !group.Live(sr) {
		s.Delete(sr.Name)
		return
	}
	r := validate.RouteOf(sr)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cached[r.Name] = r
	if res, ok := s.reserved[r.Name]; ok && sameRoute(res.route, r) {
		delete(s.reserved, r.Name)
	}
	s.refresh(r.Name)
}

// Delete records that the cache no longer has a route.
func (s *Store) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cached, name)
	s.refresh(name)
}

// Admit validates sr (old is the stored object on update, nil on create)
// and, unless dryRun, reserves what it admits. A refusal that rests only
// on other routes is confirmed with the API server first (Live).
func (s *Store) Admit(ctx context.Context, cfg validate.Config, sr, old *v1.StaticRoute, dryRun bool) (validate.Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced() {
		return validate.Result{}, false
	}
	s.expire()
	res := validate.StaticRoute(cfg, s.index, sr, old)
	if len(res.Errors) > 0 && s.Live != nil && len(validate.StaticRoute(cfg, nil, sr, old).Errors) == 0 &&
		s.confirm(ctx, validate.Blamed(s.index, sr)) {
		res = validate.StaticRoute(cfg, s.index, sr, old)
	}
	if len(res.Errors) == 0 && !dryRun {
		s.reserve(sr)
	}
	return res, true
}

// reserve holds what sr admits until the cache shows it, the oldest
// reservation giving way past MaxReserved.
func (s *Store) reserve(sr *v1.StaticRoute) {
	r := validate.RouteOf(sr)
	now := s.now()
	if r.Created.IsZero() {
		r.Created = now
	}
	s.reserved[r.Name] = reservation{route: r, at: now, expires: now.Add(s.ttl)}
	s.refresh(r.Name)
	for s.MaxReserved > 0 && len(s.reserved) > s.MaxReserved {
		oldest := ""
		for name, res := range s.reserved {
			if oldest == "" || res.at.Before(s.reserved[oldest].at) {
				oldest = name
			}
		}
		delete(s.reserved, oldest)
		s.refresh(oldest)
	}
}

// confirm reads names from the API server and puts what it holds in
// place of what the store knows: a route it does not hold (or holds being
// deleted) is dropped, unless a reservation of it is younger than Grace.
// It says whether anything changed. A failed read changes nothing: the
// refusal then stands on what is known.
func (s *Store) confirm(ctx context.Context, names []string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	changed := false
	for _, name := range names {
		live, err := s.Live(ctx, name)
		switch {
		case err != nil:
			s.count("failed")
			return changed
		case live == nil || !group.Live(live):
			s.count("gone")
			delete(s.cached, name)
			if res, ok := s.reserved[name]; ok && s.now().Sub(res.at) < s.Grace {
				continue
			}
			delete(s.reserved, name)
		default:
			s.count("found")
			r := validate.RouteOf(live)
			if known, ok := s.cached[name]; ok && sameRoute(known, r) {
				continue
			}
			s.cached[name] = r
			if res, ok := s.reserved[name]; ok && !sameRoute(res.route, r) {
				delete(s.reserved, name)
			}
		}
		s.refresh(name)
		changed = true
	}
	return changed
}

func (s *Store) count(result string) {
	if s.LiveReads != nil {
		s.LiveReads(result)
	}
}

// Reservations counts the admitted routes the cache has not shown yet.
func (s *Store) Reservations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reserved)
}

func (s *Store) expire() {
	now := s.now()
	for name, r := range s.reserved {
		if now.After(r.expires) {
			delete(s.reserved, name)
			s.refresh(name)
		}
	}
}

// refresh puts into the index what is known of name: a reservation wins
// over the cache.
func (s *Store) refresh(name string) {
	if r, ok := s.reserved[name]; ok {
		s.index.Put(r.route)
		return
	}
	if r, ok := s.cached[name]; ok {
		s.index.Put(r)
		return
	}
	s.index.Delete(name)
}

func sameRoute(a, b validate.Route) bool {
	return a.Group == b.Group && a.Gateway == b.Gateway && slices.Equal(a.Destinations, b.Destinations)
}

// Feed is the informer handler that keeps the store up to date with the
// cache: every StaticRoute added or changed is upserted, every one deleted
// (also when only a relist saw it go) is deleted.
func (s *Store) Feed() toolscache.ResourceEventHandler {
	upsert := func(obj any) {
		if sr, ok := obj.(*v1.StaticRoute); ok {
			s.Upsert(sr)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    upsert,
		UpdateFunc: func(_, obj any) { upsert(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if sr, ok := obj.(*v1.StaticRoute); ok {
				s.Delete(sr.Name)
			}
		},
	}
}
