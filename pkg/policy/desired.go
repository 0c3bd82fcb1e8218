package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/validate"
)

// Kind is what a route in the steering table does.
type Kind int

// Route kinds, in the order they print.
const (
	// Via sends a prefix to a gateway over the VPC link.
	Via Kind = iota
	// Throw makes the lookup fall through to the next rule (main): for
	// what must never be steered.
	Throw
	// Unreachable fails closed when a group's gateway is not on-link.
	Unreachable
)

func (k Kind) String() string {
	return [...]string{"via", "throw", "unreachable"}[k]
}

// Route is one route of the steering table.
type Route struct {
	Prefix  netip.Prefix
	Kind    Kind
	Gateway netip.Addr // Via only
	Group   string     // Via and Unreachable
}

func (r Route) String() string {
	switch r.Kind {
	case Via:
		return fmt.Sprintf("%s via %s (group %s)", r.Prefix, r.Gateway, r.Group)
	case Unreachable:
		return fmt.Sprintf("unreachable %s (group %s)", r.Prefix, r.Group)
	}
	return "throw " + r.Prefix.String()
}

// Group is one group's outcome on this node.
type Group struct {
	Name   string
	Active string // the member whose destinations are routed
	// Gateway is the gateway of the group's routes: the active member's,
	// or, when it has several, the first that new connections may take
	// (what a packet outside any connection's lane takes).
	Gateway  netip.Addr
	Prefixes []netip.Prefix // routed via the gateway, or unreachable
	State    string         // v1.NodeGroup*
	Reason   string
	// Selection says why Active carries the group on this node.
	Selection v1.Selection
	// Members are the group's live members, oldest first, with their
	// gateways' probes as this node runs them.
	Members []Member
	// Lanes are the active member's gateways when it has several
	// (spec.gateways), or while another member drains, each in its slot:
	// new connections are spread over the open ones, and each keeps its
	// lane for its life. The draining member's lanes follow, none open.
	// Nil for a member with one gateway and no drain.
	Lanes []Lane
	// Drain is the member whose connections drain after a planned
	// failover (spec.drainSeconds), if any.
	Drain *Drain
}

// Drain is a member whose connections keep its gateways after a newer
// member took its group over, until they end or until Until.
type Drain struct {
	Member string
	Until  time.Time
	// Tag is the lane that a connection in no lane takes while the drain
	// lasts: the connections opened before lanes were (the member had
	// one gateway), counted in it from their next packet on.
	Tag int
}

// Lane is one gateway of a group's active member in its slot: its
// connections carry the mark Options.LaneMark(Slot) and leave through
// table Options.LaneTable(Slot), which sends them to To. A draining
// member's lane is never open.
type Lane struct {
	Slot int
	group.Lane
	Draining bool
}

// Member is one member of a group as a node sees it.
type Member struct {
	Name string
	// Gateways are its gateways in its order, each with its probe and
	// health. Checked says it has a health check.
	Gateways []MemberGateway
	Checked  bool
	// State is the best of its gateways' (group.Best); Carrying says one
	// of its gateways carried the group when this state was computed
	// (what keeps a Pending member on).
	State    group.State
	Carrying bool
}

// MemberGateway is one gateway of a member: its probe, if the member is
// checked, and its health as this node sees it (Up for a member without a
// check). A checked gateway that is not on-link cannot be probed and
// counts as down, as does any gateway of several that is not on-link.
type MemberGateway struct {
	Gateway netip.Addr
	Probe   group.Probe
	State   group.State
}

// Node is what the router reads off its node.
type Node struct {
	Labels map[string]string
	// VPCLink is the interface to the VPC; VPCAddr the node's address on
	// it, the source of every steered packet (the gateway NATs only VPC
	// sources).
	VPCLink string
	VPCAddr netip.Addr
	// VPCPrefix is VPCAddr's prefix on the link: the VPC, where the
	// layout sets none.
	VPCPrefix netip.Prefix
	// OnLink are the prefixes connected on the VPC link: a gateway outside
	// them is not on-link.
	OnLink []netip.Prefix
	// Connected are the main table's connected routes on every link.
	Connected []netip.Prefix
	// MainVia are the main table's routes via a gateway (other than the
	// default route): the old operator's, or another agent's.
	MainVia []netip.Prefix
}

// Input is everything the desired state is computed from.
type Input struct {
	Routes []*v1.StaticRoute
	Node   Node
	// Cluster ranges and API server addresses (kubeconfig host and the
	// default/kubernetes EndpointSlice), never steered.
	Cluster validate.Config
	// NeverRoute are extra CIDRs never steered (--never-route).
	NeverRoute []netip.Prefix
	// Health is each probed path's state as this node's checks see it; a
	// checked member whose path is not in it is Pending.
	Health map[group.Path]group.State
	// Carried is, per group, the gateway its traffic takes now: the last
	// applied state's, or after a restart the kernel's. A Pending member
	// on it keeps the group until its probes decide.
	Carried map[string]netip.Addr
	// Hold names, per group, the member it must keep for now: a switch
	// within a period of its last one waits (group.Damper).
	Hold map[string]string
	// Now is when this state is computed: drains end at a time
	// (group.Draining).
	Now time.Time
	// LaneTo is, per lane slot, where its connections leave now: the last
	// applied state's, or after a restart the kernel's. A Pending lane
	// that is away stays away until its probes decide (group.Lanes).
	LaneTo map[int]netip.Addr
	// AdoptLegacy: remove the old operator's main-table routes that a
	// StaticRoute now steers (--adopt-legacy-routes).
	AdoptLegacy bool
}

// Desired is a node's whole desired steering state: plain data, printable.
type Desired struct {
	// Link and Src are the VPC link and the node's address on it: every
	// Via route leaves by Link with source Src.
	Link string
	Src  netip.Addr
	// Inside are the VPC and pod ranges: a connection from them is never
	// inbound, whatever link it arrives on.
	Inside []netip.Prefix
	Routes []Route // sorted by prefix, then kind
	Groups []Group // sorted by name
	// Probes are the health checks this node runs, one per distinct probe,
	// each with its slot (its mark and table): sorted by slot.
	Probes []Probe
	// Lanes are every group's lanes (Group.Lanes), sorted by slot.
	Lanes []GroupLane
	// CarveOuts are what the node keeps direct whatever a group steers,
	// and why (the VPC, pod and service ranges, the API servers, the
	// connected routes, --never-route, the special ranges): the steering
	// table throws them when it holds a route. Sorted by prefix.
	CarveOuts []CarveOut
	// Legacy are the old operator's main-table routes to remove once our
	// table steers their destinations (Input.AdoptLegacy); nil when the
	// main table holds none of them.
	Legacy map[LegacyRoute]bool
}

// GroupLane is a lane with its group, and the ranges whose new
// connections it may take: the group's routes, as the steering table's
// longest match gives them to it.
type GroupLane struct {
	Group string
	Lane
}

// CarveOut is a range a node never steers, and why.
type CarveOut struct {
	Prefix netip.Prefix
	Why    string // e.g. "the VPC CIDR 198.51.100.0/24"
}

// Probe is a health check a node runs, in its slot: probes leave with
// the mark Options.ProbeMark(Slot) and look up table
// Options.ProbeTable(Slot), which sends them to their gateway whatever
// member carries the group.
type Probe struct {
	Slot int
	group.Probe
}

// String prints the state the way a person reads a routing table.
func (d Desired) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "link %s src %s inside %v\n", d.Link, d.Src, d.Inside)
	for _, g := range d.Groups {
		fmt.Fprintf(&b, "group %s: %s member=%s gateway=%s prefixes=%v", g.Name, g.State, g.Active, g.Gateway, g.Prefixes)
		if g.Reason != "" {
			fmt.Fprintf(&b, " (%s)", g.Reason)
		}
		if g.Selection != v1.SelectionNewest && g.Selection != "" {
			fmt.Fprintf(&b, " [%s]", g.Selection)
		}
		if g.Drain != nil {
			fmt.Fprintf(&b, " draining %s until %s (lane %d for connections in none)", g.Drain.Member, g.Drain.Until.UTC().Format(time.RFC3339), g.Drain.Tag)
		}
		b.WriteByte('\n')
	}
	for _, r := range d.Routes {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	for _, p := range d.Probes {
		fmt.Fprintf(&b, "probe %d: %s\n", p.Slot, p.Probe)
	}
	for _, l := range d.Lanes {
		draining := ""
		if l.Draining {
			draining = " draining"
		}
		fmt.Fprintf(&b, "lane %d of group %s: %s%s\n", l.Slot, l.Group, l.Lane.Lane, draining)
	}
	legacy := make([]string, 0, len(d.Legacy))
	for l := range d.Legacy {
		legacy = append(legacy, l.String())
	}
	slices.Sort(legacy)
	for _, l := range legacy {
		fmt.Fprintf(&b, "old operator's route to remove from main: %s\n", l)
	}
	return b.String()
}

// member is a live StaticRoute with what the computation needs.
type member struct {
	obj      *v1.StaticRoute
	route    validate.Route
	gws      []memberGateway // one per route.Gateways
	checked  bool            // it has a health check
	state    group.State     // the best of its gateways'
	carrying bool            // one of its gateways carries the group now
	rank     int             // group.Rank
}

type memberGateway struct {
	MemberGateway
	probed bool // the node runs its probe
	onLink bool
}

func (m member) several() bool { return len(m.route.Gateways) > 1 }

// Compute returns the desired state of one node. It depends only on the
// set of objects, not their order: every router computes the same
// ownership of addresses from the same objects.
func Compute(in Input) Desired {
	groups := liveMembers(in)
	order := byAge(in, groups)
	carve := carveOuts(in)
	claimed := validate.NewIndex()
	var probes []group.Probe
	d := Desired{Link: in.Node.VPCLink, Src: in.Node.VPCAddr, Inside: insideRanges(in.Cluster)}
	slots := laneSlots(order, in.Node.Labels)
	for _, a := range order {
		lanes, drain := groupLanes(in, a, slots)
		g, routed := groupOutcome(in, a.name, a.active, lanes, drain, carve, claimed)
		g.Selection, g.Members = a.selection, a.members
		// Claims are global, whether or not the group selects this node,
		// so that every node gives an address to the same group.
		claimed.Put(validate.Route{Name: a.name, Group: a.name, Destinations: g.Prefixes})
		// An invalid selector is reported on every node it could
		// concern, and routes nothing.
		if ok, err := group.Selects(a.active.obj, in.Node.Labels); err != nil {
			g.State, g.Reason, routed = v1.NodeGroupError, err.Error(), nil
			g.Prefixes = nil
		} else if !ok {
			continue
		}
		d.Groups = append(d.Groups, g)
		d.Routes = append(d.Routes, routed...)
		for _, l := range g.Lanes {
			d.Lanes = append(d.Lanes, GroupLane{Group: g.Name, Lane: l})
		}
		for _, m := range groups[a.name] {
			// Every gateway of every member of a group that selects the
			// node is probed, whichever carries it: a standby's health
			// decides failback.
			for _, g := range m.gws {
				if g.probed {
					probes = append(probes, g.Probe)
				}
			}
		}
	}
	d.Probes = probeSlots(probes)
	slices.SortFunc(d.Lanes, func(x, y GroupLane) int { return x.Slot - y.Slot })
	if in.AdoptLegacy {
		if legacy := LegacyRoutes(in.Routes); MayHoldLegacy(in.Node.MainVia, legacy) {
			d.Legacy = legacy
		}
	}
	for _, p := range carve.prefixes {
		d.CarveOuts = append(d.CarveOuts, CarveOut{Prefix: p, Why: carve.what[p]})
		if len(d.Routes) > 0 {
			d.Routes = append(d.Routes, Route{Prefix: p, Kind: Throw})
		}
	}
	d.sort()
	return d
}

// sort orders d's routes by prefix, then kind, and its groups by name.
func (d *Desired) sort() {
	slices.SortFunc(d.Routes, func(x, y Route) int {
		if c := validate.ComparePrefix(x.Prefix, y.Prefix); c != 0 {
			return c
		}
		return cmp.Compare(x.Kind, y.Kind)
	})
	slices.SortFunc(d.Groups, func(x, y Group) int { return strings.Compare(x.Name, y.Name) })
}

// liveMembers are the live StaticRoutes by group, each with its
// gateways' health as this node sees it.
func liveMembers(in Input) map[string][]member {
	groups := map[string][]member{}
	for _, sr := range in.Routes {
		if !group.Live(sr) {
			continue
		}
		r := validate.RouteOf(sr)
		m := member{obj: sr, route: r}
		probes, ok := group.ProbesOf(sr)
		m.checked = probes != nil
		carried, isCarried := in.Carried[r.Group]
		var states []group.State
		for i, gw := range r.Gateways {
			g := memberGateway{MemberGateway: MemberGateway{Gateway: gw, State: group.Up}}
			g.onLink = in.Node.VPCAddr.IsValid() && containsAddr(in.Node.OnLink, gw)
			if m.checked {
				g.Probe = probes[i]
			}
			// A gateway this node cannot probe (not on-link) is down; so
			// is one of several that is not on-link: no lane leads there.
			g.probed = m.checked && ok[i] && g.onLink
			switch {
			case g.probed:
				g.State = in.Health[g.Probe.Path]
			case m.checked && ok[i], m.several() && !g.onLink:
				g.State = group.Down
			}
			m.gws = append(m.gws, g)
			states = append(states, g.State)
			m.carrying = m.carrying || isCarried && carried == gw
		}
		m.state = group.Best(states)
		m.rank = group.Rank(m.state, m.carrying)
		groups[r.Group] = append(groups[r.Group], m)
	}
	return groups
}

// aged is a group with its active member and the selection that chose
// it, known by its oldest live member.
type aged struct {
	name      string
	oldest    group.Key
	active    member
	selection v1.Selection
	members   []Member
	// draining is the member whose connections drain (group.Draining),
	// until until; nil if none.
	draining *member
	until    time.Time
}

// byAge picks each group's active member (group.Active, or the member
// the damper holds) and orders the groups oldest first: older groups
// (by their oldest live member) keep addresses that overlap a younger
// group's.
func byAge(in Input, groups map[string][]member) []aged {
	key := func(m member) group.Key { return m.route.Key() }
	rank := func(m member) int { return m.rank }
	var order []aged
	for name, ms := range groups {
		a := aged{name: name, oldest: key(ms[group.Oldest(ms, key)]), active: ms[group.Active(ms, key, rank)], selection: v1.SelectionNewest}
		switch newest := ms[group.Active(ms, key, nil)]; {
		case a.active.state == group.Down:
			a.selection = v1.SelectionAllDown
		case a.active.obj != newest.obj:
			a.selection = v1.SelectionNewerDown
		}
		if h, ok := in.Hold[name]; ok && h != a.active.obj.Name {
			if i := slices.IndexFunc(ms, func(m member) bool { return m.obj.Name == h }); i >= 0 {
				a.active, a.selection = ms[i], v1.SelectionHeld
			}
		}
		if a.selection != v1.SelectionHeld {
			active := slices.IndexFunc(ms, func(m member) bool { return m.obj == a.active.obj })
			up := func(m member) bool { return m.state == group.Up }
			drain := func(m member) time.Duration { return time.Duration(m.obj.Spec.DrainSeconds) * time.Second }
			if i, until := group.Draining(ms, active, key, rank, up, drain, in.Now); i >= 0 {
				m := ms[i] // a copy: ms is sorted below
				a.draining, a.until = &m, until
			}
		}
		group.Sort(ms, key)
		for _, m := range ms {
			pm := Member{Name: m.obj.Name, Checked: m.checked, State: m.state, Carrying: m.carrying}
			for _, g := range m.gws {
				pm.Gateways = append(pm.Gateways, g.MemberGateway)
			}
			a.members = append(a.members, pm)
		}
		order = append(order, a)
	}
	group.Sort(order, func(a aged) group.Key { return a.oldest })
	return order
}

// groupOutcome decides what one group routes: its active member's
// destinations less those inside a carve-out or claimed by an older group.
func groupOutcome(in Input, name string, active member, lanes []Lane, drain *Drain, carve carveSet, claimed *validate.Index) (Group, []Route) {
	r := active.route
	g := Group{Name: name, Active: r.Name, Gateway: routeGateway(r, lanes, drain), State: v1.NodeGroupApplied, Lanes: lanes, Drain: drain}
	var reasons []string
	conflicted := false
	for _, p := range r.Destinations {
		if what, inside := carve.inside(p); inside {
			reasons = append(reasons, fmt.Sprintf("%s lies inside %s and is never steered", p, what))
			continue
		}
		older := ""
		claimed.Overlaps(p, func(q netip.Prefix, owner string) bool {
			if q.Bits() <= p.Bits() {
				older = owner // q contains p: the older group wins all of p
				return false
			}
			conflicted = true // p contains q: q's more specific route wins q
			return true
		})
		if older != "" {
			conflicted = true
			reasons = append(reasons, fmt.Sprintf("%s is routed by the older group %s", p, older))
			continue
		}
		g.Prefixes = append(g.Prefixes, p)
	}
	kind := Via
	if state, why := gatewayProblem(in, active, g.Gateway); why != "" {
		kind, g.State = Unreachable, state
		reasons = append([]string{why}, reasons...)
	} else if conflicted {
		g.State = v1.NodeGroupConflicted
	}
	if len(r.Destinations) == 0 || len(active.obj.Spec.Destinations) != len(r.Destinations) {
		reasons = append(reasons, "some destinations do not parse")
		if g.State == v1.NodeGroupApplied {
			g.State = v1.NodeGroupError
		}
	}
	if kind != Via {
		g.Lanes, g.Drain = nil, nil
	}
	g.Reason = strings.Join(reasons, "; ")
	routes := make([]Route, 0, len(g.Prefixes))
	for _, p := range g.Prefixes {
		rt := Route{Prefix: p, Kind: kind, Group: name}
		if kind == Via {
			rt.Gateway = g.Gateway
		}
		routes = append(routes, rt)
	}
	return g, routes
}

// routeGateway is the gateway of a group's routes, which a packet in no
// lane takes: the active member's; with lanes, the first open one's; and
// while a member drains, the draining member's, since such a packet
// belongs to a connection from before the switch.
func routeGateway(r validate.Route, lanes []Lane, drain *Drain) netip.Addr {
	if drain != nil {
		return lanes[slices.IndexFunc(lanes, func(l Lane) bool { return l.Slot == drain.Tag })].To
	}
	if i := slices.IndexFunc(lanes, func(l Lane) bool { return l.Open }); i >= 0 {
		return lanes[i].Gateway
	}
	return r.Gateway
}

// gatewayProblem says why a group whose active member is active and
// whose routes go via gw fails closed on this node, and in which state;
// "" if nothing is wrong: a gateway that does not parse or lies outside
// the VPC (an object from before the webhook), or gw not on-link.
func gatewayProblem(in Input, active member, gw netip.Addr) (string, string) {
	gws := active.route.Gateways
	outside := slices.IndexFunc(gws, func(g netip.Addr) bool { return len(in.Cluster.VPC) > 0 && !containsAddr(in.Cluster.VPC, g) })
	switch {
	case len(gws) == 0 || slices.ContainsFunc(gws, func(g netip.Addr) bool { return !g.IsValid() }):
		return v1.NodeGroupError, fmt.Sprintf("gateway %q is not an IPv4 address", badGateway(active.obj))
	case outside >= 0:
		return v1.NodeGroupError, fmt.Sprintf("gateway %s is outside the VPC", gws[outside])
	case !containsAddr(in.Node.OnLink, gw) || !in.Node.VPCAddr.IsValid():
		return v1.NodeGroupGatewayNotOnLink, fmt.Sprintf("gateway %s is not on-link on %s: its destinations are unreachable until it is", gw, in.Node.VPCLink)
	}
	return "", ""
}

// badGateway is the first of sr's gateways that does not parse.
func badGateway(sr *v1.StaticRoute) string {
	for _, s := range sr.GatewayList() {
		if _, err := validate.ParseIPv4(s); err != nil {
			return s
		}
	}
	return ""
}

// insideRanges are the sources whose connections are never inbound.
func insideRanges(c validate.Config) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.VPC)+len(c.Pod))
	for _, p := range append(slices.Clone(c.VPC), c.Pod...) {
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, validate.ComparePrefix)
	return slices.Compact(out)
}

// carveSet is every range a node never steers, with words for messages.
type carveSet struct {
	prefixes []netip.Prefix // sorted, deduplicated
	what     map[netip.Prefix]string
}

func carveOuts(in Input) carveSet {
	c := carveSet{what: map[netip.Prefix]string{}}
	add := func(what string, ps ...netip.Prefix) {
		for _, p := range ps {
			p = p.Masked()
			if _, ok := c.what[p]; !ok {
				c.what[p] = what + " " + p.String()
				c.prefixes = append(c.prefixes, p)
			}
		}
	}
	// The cluster's ranges, as the webhook names them; then what only a
	// node knows.
	for _, r := range in.Cluster.Ranges() {
		if p := r.Prefix.Masked(); c.what[p] == "" {
			c.what[p] = r.What
			c.prefixes = append(c.prefixes, p)
		}
	}
	add("the connected route", in.Node.Connected...)
	add("--never-route", in.NeverRoute...)
	add("the special range", validate.SpecialRanges()...)
	slices.SortFunc(c.prefixes, validate.ComparePrefix)
	return c
}

func (c carveSet) inside(p netip.Prefix) (string, bool) {
	for _, q := range c.prefixes {
		if validate.Covers(q, p) {
			return c.what[q], true
		}
	}
	return "", false
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
