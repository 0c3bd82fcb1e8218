// Package webhook is the StaticRoute admission webhook: a typed validator
// that runs pkg/validate against the other routes, and a store that holds
// those routes.
package webhook

import (
	toolscache "k8s.io/client-go/tools/cache"
	"slices"
	"sync"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/validate"
)

// Store is the webhook's view of every StaticRoute: the informer cache,
// overlaid with the routes this replica admitted that the cache does not
// show yet. Without that overlay two overlapping creates in quick
// succession (kubectl apply -f dir/) would each be checked against a cache
// that lacks the other, and both would pass.
//
// Admissions are serialized by one mutex: validation takes microseconds.
type Store struct {
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
	expires time.Time
}

// NewStore returns an empty store whose reservations last ttl.
func NewStore(ttl time.Duration) *Store {
	return &Store{
		index:    validate.NewIndex(),
		cached:   map[string]validate.Route{},
		reserved: map[string]reservation{},
		ttl:      ttl,
		now:      time.Now,
		synced:   func() bool { return true },
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
	if sr.DeletionTimestamp != nil {
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
// and, unless dryRun, reserves what it admits.
func (s *Store) Admit(cfg validate.Config, sr, old *v1.StaticRoute, dryRun bool) (validate.Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced() {
		return validate.Result{}, false
	}
	s.expire()
	res := validate.StaticRoute(cfg, s.index, sr, old)
	if len(res.Errors) == 0 && !dryRun {
		r := validate.RouteOf(sr)
		if r.Created.IsZero() {
			r.Created = s.now()
		}
		s.reserved[r.Name] = reservation{route: r, expires: s.now().Add(s.ttl)}
		s.refresh(r.Name)
	}
	return res, true
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
