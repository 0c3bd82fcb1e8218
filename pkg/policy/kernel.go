package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Kernel applies desired states to one network namespace through a netlink
// handle bound to it. Every write is idempotent: "exists" on add and "not
// found" on delete are success.
type Kernel struct {
	NL    *netlink.Handle
	Opts  Options
	batch *batcher

	// FullCheck bounds how long Apply trusts its memory of what it wrote:
	// past it, the routes are dumped and compared again even if nothing
	// invalidated them.
	FullCheck time.Duration

	mu       sync.Mutex
	applied  string    // fingerprint of the routes and nexthops last written
	verified time.Time // when the kernel was last dumped and found equal
}

// Invalidate makes the next Apply compare with the kernel's routes: call
// it on a route event in our tables (someone flushed or edited them).
func (k *Kernel) Invalidate() {
	k.mu.Lock()
	k.applied = ""
	k.mu.Unlock()
}

// NewKernel opens netlink handles in the namespace ns (netns.None(): the
// caller's own). Close releases them.
func NewKernel(ns netns.NsHandle, opts Options) (*Kernel, error) {
	var h *netlink.Handle
	var err error
	if ns == netns.None() {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Kernel{NL: h, Opts: opts, batch: &batcher{sock: sock}, FullCheck: 10 * time.Second}, nil
}

// Close releases the netlink sockets.
func (k *Kernel) Close() {
	k.NL.Close()
	k.batch.sock.Close()
}

// Applied says what one Apply did.
type Applied struct {
	Swapped bool // a new table was switched in
	Table   int  // the active table afterwards
	Routes  int  // routes in it
	// Moved counts groups whose gateway changed in place (nexthop
	// replace): a failover that keeps the destinations.
	Moved int
	// ToSwitch is the time from the start of Apply to the switch (the rule
	// swap, or the nexthop replace when nothing else changed): what a
	// change takes to reach the traffic.
	ToSwitch time.Duration
}

// Apply makes the kernel's steering match d. A change is written whole into
// the inactive table; a rule for it is added behind the active one at the
// same priority; then deleting the active rule — one netlink message —
// switches every lookup to the complete new table at once; last, the old
// table is flushed. At no instant does a steered destination miss both
// tables and fall through to main.
func (k *Kernel) Apply(d Desired) (_ Applied, err error) {
	start := time.Now()
	want, nhids, nhs, err := k.kernelRoutes(d)
	if err != nil {
		return Applied{}, err
	}
	rules, err := k.steeringRules()
	if err != nil {
		return Applied{}, err
	}
	active := 0
	if len(rules) > 0 {
		// After a crash between adding the new rule and deleting the old
		// one, the first rule listed still answers first: it is active.
		active = rules[0].Table
	}
	// The steady state: what was last written is wanted still, the rule
	// is in place and nothing invalidated the tables. Dumping every route
	// each resync would cost ~50 ms at 10,000 prefixes.
	fp := fingerprint(want, nhs)
	k.mu.Lock()
	trusted := k.applied == fp && time.Since(k.verified) < k.FullCheck
	k.mu.Unlock()
	if trusted && len(rules) == 1 {
		return Applied{Table: active, Routes: len(want)}, k.ensureMarkRule()
	}
	defer func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if err == nil {
			k.applied, k.verified = fp, time.Now()
		} else {
			k.applied = ""
		}
	}()

	// A group whose gateway changed moves every route of it at once.
	current, err := k.batch.listNexthops(k.Opts.Protocol)
	if err != nil {
		return Applied{}, err
	}
	var changed []nexthop
	moved := 0
	for _, nh := range nhs {
		cur, ok := current[nh.id]
		if ok && cur.gateway == nh.gateway && cur.link == nh.link {
			continue
		}
		if ok {
			moved++
		}
		changed = append(changed, nh)
	}
	if err := k.batch.replaceNexthops(changed, k.Opts.Protocol); err != nil {
		return Applied{}, fmt.Errorf("writing nexthops: %w", err)
	}
	movedAt := time.Now()
	stale := func() []uint32 {
		var ids []uint32
		for id := range current {
			if !slices.ContainsFunc(nhs, func(nh nexthop) bool { return nh.id == id }) {
				ids = append(ids, id)
			}
		}
		return ids
	}

	tables, err := k.ourRoutes()
	if err != nil {
		return Applied{}, err
	}
	target := k.other(active)
	if active != 0 && len(rules) == 1 && sameRoutes(tables[active], want) && len(tables[target]) == 0 {
		a := Applied{Table: active, Routes: len(want), Moved: moved}
		if moved > 0 {
			a.ToSwitch = movedAt.Sub(start)
		}
		if err := k.batch.deleteNexthops(stale()); err != nil {
			return a, fmt.Errorf("deleting unused nexthops: %w", err)
		}
		return a, k.ensureMarkRule()
	}

	if err := k.batch.routes(unix.RTM_DELROUTE, tables[target], nil); err != nil {
		return Applied{}, fmt.Errorf("flushing table %d: %w", target, err)
	}
	for i := range want {
		want[i].Table = target
	}
	if err := k.batch.routes(unix.RTM_NEWROUTE, want, nhids); err != nil {
		return Applied{}, fmt.Errorf("writing table %d: %w", target, err)
	}
	if err := k.NL.RuleAdd(k.rule(target)); err != nil && !errors.Is(err, unix.EEXIST) {
		return Applied{}, fmt.Errorf("adding the rule for table %d: %w", target, err)
	}
	// The switch.
	switched := time.Now()
	for _, r := range rules {
		if r.Table == target {
			continue
		}
		if err := k.NL.RuleDel(k.rule(r.Table)); err != nil && !isGone(err) {
			return Applied{}, fmt.Errorf("deleting the rule for table %d: %w", r.Table, err)
		}
	}
	if active != 0 && active != target {
		if err := k.batch.routes(unix.RTM_DELROUTE, tables[active], nil); err != nil {
			return Applied{}, fmt.Errorf("flushing table %d: %w", active, err)
		}
	}
	// Deleting a nexthop deletes the routes that use it: only now that
	// the old table is gone.
	if err := k.batch.deleteNexthops(stale()); err != nil {
		return Applied{}, fmt.Errorf("deleting unused nexthops: %w", err)
	}
	return Applied{Swapped: true, Table: target, Routes: len(want), Moved: moved, ToSwitch: switched.Sub(start)}, k.ensureMarkRule()
}

// fingerprint identifies a set of routes and nexthops.
func fingerprint(routes []netlink.Route, nhs []nexthop) string {
	keys := make([]string, 0, len(routes)+len(nhs))
	for _, r := range routes {
		keys = append(keys, routeKey(r))
	}
	for _, nh := range nhs {
		keys = append(keys, fmt.Sprintf("nh %d %s %d", nh.id, nh.gateway, nh.link))
	}
	slices.Sort(keys)
	return strings.Join(keys, "\n")
}

// Active returns the table the steering rule points at, 0 if none.
func (k *Kernel) Active() (int, error) {
	rules, err := k.steeringRules()
	if err != nil || len(rules) == 0 {
		return 0, err
	}
	return rules[0].Table, nil
}

// Cleanup removes every rule and route of ours, and nothing else.
func (k *Kernel) Cleanup() error {
	k.Invalidate()
	var errs []error
	rules, err := k.steeringRules()
	errs = append(errs, err)
	for _, r := range rules {
		if err := k.NL.RuleDel(k.rule(r.Table)); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("deleting the rule for table %d: %w", r.Table, err))
		}
	}
	if err := k.NL.RuleDel(k.markRule()); err != nil && !isGone(err) {
		errs = append(errs, fmt.Errorf("deleting the mark rule: %w", err))
	}
	for _, t := range k.Opts.Tables {
		errs = append(errs, k.flush(t))
	}
	nhs, err := k.batch.listNexthops(k.Opts.Protocol)
	errs = append(errs, err)
	var ids []uint32
	for id := range nhs {
		ids = append(ids, id)
	}
	errs = append(errs, k.batch.deleteNexthops(ids))
	return errors.Join(errs...)
}

func (k *Kernel) other(table int) int {
	if table == k.Opts.Tables[0] {
		return k.Opts.Tables[1]
	}
	return k.Opts.Tables[0]
}

func (k *Kernel) rule(table int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = k.Opts.Priority
	r.Table = table
	return r
}

func (k *Kernel) markRule() *netlink.Rule {
	r := netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = k.Opts.MarkPriority
	r.Table = unix.RT_TABLE_MAIN
	r.Mark = k.Opts.Mark
	mask := k.Opts.Mark
	r.Mask = &mask
	return r
}

func (k *Kernel) ensureMarkRule() error {
	rules, err := k.NL.RuleList(unix.AF_INET)
	if err != nil {
		return fmt.Errorf("listing rules: %w", err)
	}
	for _, r := range rules {
		if r.Priority == k.Opts.MarkPriority && r.Table == unix.RT_TABLE_MAIN && r.Mark == k.Opts.Mark {
			return nil
		}
	}
	if err := k.NL.RuleAdd(k.markRule()); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding the mark rule: %w", err)
	}
	return nil
}

// steeringRules lists our steering rules in the kernel's order.
func (k *Kernel) steeringRules() ([]netlink.Rule, error) {
	all, err := k.NL.RuleList(unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("listing rules: %w", err)
	}
	var out []netlink.Rule
	for _, r := range all {
		if r.Priority == k.Opts.Priority && slices.Contains(k.Opts.Tables[:], r.Table) && r.Mark == 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// ourRoutes dumps the routes of both steering tables at once.
func (k *Kernel) ourRoutes() (map[int][]netlink.Route, error) {
	all, err := k.NL.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	out := map[int][]netlink.Route{}
	for _, r := range all {
		if slices.Contains(k.Opts.Tables[:], r.Table) {
			out[r.Table] = append(out[r.Table], r)
		}
	}
	return out, nil
}

func (k *Kernel) tableRoutes(table int) ([]netlink.Route, error) {
	rs, err := k.NL.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing table %d: %w", table, err)
	}
	return rs, nil
}

func (k *Kernel) flush(table int) error {
	rs, err := k.tableRoutes(table)
	if err != nil {
		return err
	}
	if err := k.batch.routes(unix.RTM_DELROUTE, rs, nil); err != nil {
		return fmt.Errorf("flushing table %d: %w", table, err)
	}
	return nil
}

// kernelRoutes turns d into netlink routes (Apply sets the table when it
// writes them; routeKey ignores it), the nexthop ID of each steered route
// (by position, 0 for others), and one nexthop per steering group.
func (k *Kernel) kernelRoutes(d Desired) ([]netlink.Route, []uint32, []nexthop, error) {
	link := 0
	var groups []string
	gateways := map[string]netip.Addr{}
	for _, r := range d.Routes {
		if r.Kind == Via {
			if _, ok := gateways[r.Group]; !ok {
				groups = append(groups, r.Group)
			}
			gateways[r.Group] = r.Gateway
		}
	}
	if len(groups) > 0 {
		l, err := k.NL.LinkByName(d.Link)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("VPC link %q: %w", d.Link, err)
		}
		link = l.Attrs().Index
	}
	ids := nexthopIDs(groups)
	var nhs []nexthop
	for _, g := range groups {
		nhs = append(nhs, nexthop{id: ids[g], gateway: gateways[g], link: link})
	}
	out := make([]netlink.Route, 0, len(d.Routes))
	nhids := make([]uint32, 0, len(d.Routes))
	for _, r := range d.Routes {
		out = append(out, k.route(r, link, d.Src))
		nhids = append(nhids, ids[r.Group]) // 0 for throw routes: no group
		if r.Kind == Via {
			// The kernel deletes a route with its link when the link goes
			// down; this one, behind it in the same table, has no link and
			// stays: until the router reacts, the prefix fails closed
			// instead of falling through to main and the public address.
			guard := k.route(Route{Prefix: r.Prefix, Kind: Unreachable}, 0, netip.Addr{})
			guard.Priority = guardMetric
			out = append(out, guard)
			nhids = append(nhids, 0)
		}
	}
	return out, nhids, nhs, nil
}

// guardMetric ranks the fail-closed route behind the steered one.
const guardMetric = 1024

func (k *Kernel) route(r Route, link int, src netip.Addr) netlink.Route {
	nr := netlink.Route{
		Dst:      prefixNet(r.Prefix),
		Protocol: netlink.RouteProtocol(k.Opts.Protocol),
		Family:   unix.AF_INET,
	}
	switch r.Kind {
	case Via:
		nr.Type = unix.RTN_UNICAST
		nr.Gw = net.IP(r.Gateway.AsSlice())
		nr.Src = net.IP(src.AsSlice())
		nr.LinkIndex = link
	case Throw:
		nr.Type = unix.RTN_THROW
	case Unreachable:
		nr.Type = unix.RTN_UNREACHABLE
	}
	return nr
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}
}

// routeKey is what makes two routes the same for us.
func routeKey(r netlink.Route) string {
	dst := "0.0.0.0/0"
	if r.Dst != nil {
		dst = r.Dst.String()
	}
	return fmt.Sprintf("%d %s %s %s %d %d", r.Type, dst, r.Gw, r.Src, r.LinkIndex, r.Priority)
}

func sameRoutes(have, want []netlink.Route) bool {
	if len(have) != len(want) {
		return false
	}
	a := make([]string, len(have))
	b := make([]string, len(want))
	for i := range have {
		a[i] = routeKey(have[i])
		b[i] = routeKey(want[i])
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func isGone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}
