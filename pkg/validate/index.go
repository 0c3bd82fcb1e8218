package validate

import (
	"net/netip"
	"time"

	"github.com/google/btree"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
)

// Route is what the rules need to know of one StaticRoute.
type Route struct {
	Name    string
	Group   string // effective group
	Created time.Time
	// Gateways are the route's gateways (spec.gateway, or spec.gateways)
	// in the object's order; Gateway is the first. An entry that does not
	// parse is invalid: it stays, so that positions keep their meaning.
	Gateway  netip.Addr
	Gateways []netip.Addr
	// Destinations that parse; objects from before admission may hold
	// others, which are left out.
	Destinations []netip.Prefix
}

// RouteOf extracts a Route from an object, leaving out what does not parse.
func RouteOf(sr *v1.StaticRoute) Route {
	r := Route{
		Name:    sr.Name,
		Group:   sr.EffectiveGroup(),
		Created: sr.CreationTimestamp.Time,
	}
	for _, s := range sr.GatewayList() {
		gw, _ := ParseIPv4(s)
		r.Gateways = append(r.Gateways, gw)
	}
	if len(r.Gateways) > 0 {
		r.Gateway = r.Gateways[0]
	}
	for _, d := range sr.Spec.Destinations {
		if p, err := ParseDestination(d); err == nil {
			r.Destinations = append(r.Destinations, p)
		}
	}
	return r
}

// Key is what orders r among its group's members (package group).
func (r Route) Key() group.Key { return group.Key{Created: r.Created, Name: r.Name} }

// entry is one destination of one route, ordered by address, then prefix
// length, then route name: all prefixes inside P then sit in one run that
// starts at P's address.
type entry struct {
	prefix netip.Prefix
	route  string
}

func entryLess(a, b entry) bool {
	if c := a.prefix.Addr().Compare(b.prefix.Addr()); c != 0 {
		return c < 0
	}
	if a.prefix.Bits() != b.prefix.Bits() {
		return a.prefix.Bits() < b.prefix.Bits()
	}
	return a.route < b.route
}

// Index holds a set of routes so that the overlaps of one prefix are found
// in O(log n): up to 33 exact look-ups for the prefixes that contain it, one
// range scan for those it contains. It is not safe for concurrent use.
type Index struct {
	tree *btree.BTreeG[entry]
	// lengths counts entries per prefix length, so that only lengths in
	// use are looked up.
	lengths [33]int
	routes  map[string]Route
	groups  map[string]map[string]struct{}
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		tree:   btree.NewG(32, entryLess),
		routes: map[string]Route{},
		groups: map[string]map[string]struct{}{},
	}
}

// Len is the number of routes.
func (x *Index) Len() int { return len(x.routes) }

// Put adds a route, replacing any route of the same name.
func (x *Index) Put(r Route) {
	x.Delete(r.Name)
	x.routes[r.Name] = r
	for _, p := range r.Destinations {
		if _, dup := x.tree.ReplaceOrInsert(entry{p, r.Name}); !dup {
			x.lengths[p.Bits()]++
		}
	}
	m := x.groups[r.Group]
	if m == nil {
		m = map[string]struct{}{}
		x.groups[r.Group] = m
	}
	m[r.Name] = struct{}{}
}

// Delete removes a route; deleting one that is not there does nothing.
func (x *Index) Delete(name string) {
	r, ok := x.routes[name]
	if !ok {
		return
	}
	delete(x.routes, name)
	for _, p := range r.Destinations {
		if _, found := x.tree.Delete(entry{p, name}); found {
			x.lengths[p.Bits()]--
		}
	}
	if m := x.groups[r.Group]; m != nil {
		delete(m, name)
		if len(m) == 0 {
			delete(x.groups, r.Group)
		}
	}
}

// Get returns the route of that name.
func (x *Index) Get(name string) (Route, bool) {
	r, ok := x.routes[name]
	return r, ok
}

// Active returns a group's active member: its newest.
func (x *Index) Active(name string) (Route, bool) {
	ms := make([]Route, 0, len(x.groups[name]))
	for route := range x.groups[name] {
		ms = append(ms, x.routes[route])
	}
	i := group.Active(ms, Route.Key, nil)
	if i < 0 {
		return Route{}, false
	}
	return ms[i], true
}

// Overlaps calls fn for every indexed destination that overlaps p (contains
// it, equals it or lies inside it), until fn returns false.
func (x *Index) Overlaps(p netip.Prefix, fn func(other netip.Prefix, route string) bool) {
	p = p.Masked()
	// Prefixes that contain p or equal it: one exact run per length.
	for bits := 0; bits <= p.Bits(); bits++ {
		if x.lengths[bits] == 0 {
			continue
		}
		q, _ := p.Addr().Prefix(bits)
		stop := false
		x.tree.AscendGreaterOrEqual(entry{prefix: q}, func(e entry) bool {
			if e.prefix != q {
				return false
			}
			if !fn(e.prefix, e.route) {
				stop = true
				return false
			}
			return true
		})
		if stop {
			return
		}
	}
	if p.Bits() == 32 {
		return
	}
	// Prefixes strictly inside p start at p's address or after it and
	// before the end of p.
	x.tree.AscendGreaterOrEqual(entry{prefix: netip.PrefixFrom(p.Addr(), p.Bits()+1)}, func(e entry) bool {
		if !p.Contains(e.prefix.Addr()) {
			return false
		}
		if e.prefix.Bits() <= p.Bits() {
			return true
		}
		return fn(e.prefix, e.route)
	})
}
