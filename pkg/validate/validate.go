package validate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// maxConflictsNamed bounds how many other routes one message names.
const maxConflictsNamed = 3

// Result is the verdict on one StaticRoute: every error at once, with field
// paths, and warnings that do not block it.
type Result struct {
	Errors   field.ErrorList
	Warnings []string
}

// StaticRoute checks sr against the cluster's layout and the other routes;
// old is the stored object on update, nil on create. others may hold sr
// itself (by name): it is skipped.
func StaticRoute(cfg Config, others *Index, sr, old *v1.StaticRoute) Result {
	var res Result
	spec := field.NewPath("spec")
	dests, errs, warns := parseDestinations(spec.Child("destinations"), sr.Spec.Destinations)
	res.add(errs, warns)
	gws, gwPath, errs := checkGateways(spec, sr)
	gwOK := len(errs) == 0
	res.add(errs, nil)
	res.add(checkGroup(spec.Child("group"), sr.Spec.Group), nil)
	if sr.Spec.NodeSelector != nil {
		res.add(metav1validation.ValidateLabelSelector(sr.Spec.NodeSelector,
			metav1validation.LabelSelectorValidationOptions{}, spec.Child("nodeSelector")), nil)
	}
	if old != nil {
		res.add(checkUpdate(spec, sr, old), nil)
	}
	if gwOK {
		for i, gw := range gws {
			res.add(checkGatewayInVPC(gwPath(i), cfg, gw), nil)
			res.add(checkGatewayNotDestination(gwPath(i), gw.String(), gw, dests), nil)
		}
		res.add(checkHealthCheck(spec.Child("healthCheck"), cfg, sr.Spec.HealthCheck, gws), nil)
	}
	res.add(checkDrain(spec.Child("drainSeconds"), sr.Spec.DrainSeconds), nil)
	res.add(checkInsideRoute(dests), nil)
	res.add(checkClusterRanges(cfg, dests))
	if others != nil {
		res.add(checkOtherGroups(others, sr, dests), nil)
		if old == nil {
			res.add(nil, warnDropped(others, sr, dests))
		}
	}
	return res
}

// add appends one check's errors and warnings: the checks are functions
// of their inputs alone, composed here, each testable by itself.
func (r *Result) add(errs field.ErrorList, warns []string) {
	r.Errors = append(r.Errors, errs...)
	r.Warnings = append(r.Warnings, warns...)
}

// checkGatewayNotDestination refuses a gateway that is also a destination.
func checkGatewayNotDestination(path *field.Path, raw string, gw netip.Addr, dests []destination) field.ErrorList {
	var errs field.ErrorList
	for _, d := range dests {
		if d.prefix == netip.PrefixFrom(gw, 32) {
			errs = append(errs, field.Invalid(path, raw,
				fmt.Sprintf("must not also be a destination (%s): the gateway is reached directly over the VPC", d.path)))
		}
	}
	return errs
}

// destination is one parsed destination with its field path.
type destination struct {
	prefix netip.Prefix
	path   *field.Path
	raw    string
}

func parseDestinations(path *field.Path, raw []string) (dests []destination, errs field.ErrorList, warns []string) {
	switch {
	case len(raw) == 0:
		errs = append(errs, field.Required(path, "list at least one IPv4 address or CIDR to route via the gateway"))
		return nil, errs, nil
	case len(raw) > v1.MaxDestinations:
		errs = append(errs, field.TooMany(path, len(raw), v1.MaxDestinations))
	}
	out := make([]destination, 0, len(raw))
	for i, s := range raw {
		p := path.Index(i)
		if len(s) > v1.MaxDestinationLen {
			errs = append(errs, field.TooLong(p, "", v1.MaxDestinationLen))
			continue
		}
		d, err := ParseDestination(s)
		if err != nil {
			errs = append(errs, field.Invalid(p, s, err.Error()))
			continue
		}
		if name, in := insideSpecial(d); in {
			errs = append(errs, field.Invalid(p, s, "lies inside "+name+": such addresses never leave via a gateway"))
			continue
		}
		if c := containedSpecial(d); len(c) > 0 {
			warns = append(warns, fmt.Sprintf("%s: %s contains %s; nodes never route those via the gateway", p, s, strings.Join(c, ", ")))
		}
		out = append(out, destination{prefix: d, path: p, raw: s})
	}
	return out, errs, warns
}

func checkGateway(path *field.Path, s string) (netip.Addr, field.ErrorList) {
	if s == "" {
		return netip.Addr{}, field.ErrorList{field.Required(path, "give the IPv4 address of the NAT gateway inside the VPC")}
	}
	if len(s) > v1.MaxGatewayLen {
		return netip.Addr{}, field.ErrorList{field.TooLong(path, "", v1.MaxGatewayLen)}
	}
	a, err := ParseIPv4(s)
	if err != nil {
		return netip.Addr{}, field.ErrorList{field.Invalid(path, s, err.Error())}
	}
	if name, in := insideSpecial(netip.PrefixFrom(a, 32)); in {
		return netip.Addr{}, field.ErrorList{field.Invalid(path, s, "lies inside "+name+": the gateway must be a unicast VPC address")}
	}
	return a, nil
}

// checkGateways checks spec.gateway, or each of spec.gateways: exactly
// one of the two, 1 to MaxGateways distinct entries. It returns the
// gateways parsed and each one's field path.
func checkGateways(spec *field.Path, sr *v1.StaticRoute) ([]netip.Addr, func(int) *field.Path, field.ErrorList) {
	if len(sr.Spec.Gateways) == 0 || sr.Spec.Gateway != "" {
		path := spec.Child("gateway")
		if sr.Spec.Gateway != "" && len(sr.Spec.Gateways) > 0 {
			return nil, nil, field.ErrorList{field.Invalid(path, sr.Spec.Gateway,
				"give either spec.gateway (one NAT gateway) or spec.gateways (1 to 8 that share the traffic), not both")}
		}
		gw, errs := checkGateway(path, sr.Spec.Gateway)
		return []netip.Addr{gw}, func(int) *field.Path { return path }, errs
	}
	path := spec.Child("gateways")
	var errs field.ErrorList
	if len(sr.Spec.Gateways) > v1.MaxGateways {
		errs = append(errs, field.TooMany(path, len(sr.Spec.Gateways), v1.MaxGateways))
	}
	var gws []netip.Addr
	for i, s := range sr.Spec.Gateways {
		gw, bad := checkGateway(path.Index(i), s)
		switch {
		case len(bad) > 0:
			errs = append(errs, bad...)
		case slices.Contains(gws, gw):
			errs = append(errs, field.Duplicate(path.Index(i), s))
		default:
			gws = append(gws, gw)
		}
	}
	return gws, path.Index, errs
}

func checkDrain(path *field.Path, s int32) field.ErrorList {
	if s < 0 || s > v1.MaxDrainSeconds {
		return field.ErrorList{field.Invalid(path, s, fmt.Sprintf("must be from 0 (connections move at the switch) to %d (a day)", v1.MaxDrainSeconds))}
	}
	return nil
}

func checkGroup(path *field.Path, g string) (errs field.ErrorList) {
	if g == "" {
		return nil
	}
	for _, msg := range validation.IsDNS1123Subdomain(g) {
		errs = append(errs, field.Invalid(path, g, msg+" (a group is named like a StaticRoute)"))
	}
	return errs
}

func checkUpdate(spec *field.Path, sr, old *v1.StaticRoute) (errs field.ErrorList) {
	if sr.Spec.Gateway != old.Spec.Gateway {
		errs = append(errs, field.Forbidden(spec.Child("gateway"), fmt.Sprintf(
			"is immutable (was %q): to fail over, create a new StaticRoute with spec.group: %s and the new gateway; the newest member of a group carries its traffic",
			old.Spec.Gateway, old.EffectiveGroup())))
	}
	if !slices.Equal(sr.Spec.Gateways, old.Spec.Gateways) {
		errs = append(errs, field.Forbidden(spec.Child("gateways"), fmt.Sprintf(
			"is immutable (was %q): to change the gateways, create a new StaticRoute with spec.group: %s and the new gateways; the newest member of a group carries its traffic",
			old.Spec.Gateways, old.EffectiveGroup())))
	}
	if sr.EffectiveGroup() != old.EffectiveGroup() {
		errs = append(errs, field.Forbidden(spec.Child("group"), fmt.Sprintf(
			"is immutable (the route is in group %q; empty means the route's own name, and may be set to it): to move destinations to another group, create a new StaticRoute in that group",
			old.EffectiveGroup())))
	}
	return errs
}

func checkGatewayInVPC(path *field.Path, cfg Config, gw netip.Addr) (errs field.ErrorList) {
	if len(cfg.VPC) == 0 {
		return nil
	}
	for _, vpc := range cfg.VPC {
		if !vpc.Contains(gw) {
			continue
		}
		if vpc.Bits() < 31 {
			if gw == vpc.Addr() {
				errs = append(errs, field.Invalid(path, gw.String(), fmt.Sprintf("is the network address of the VPC CIDR %s: give the gateway's own address", vpc)))
			} else if gw == netipx.PrefixLastIP(vpc) {
				errs = append(errs, field.Invalid(path, gw.String(), fmt.Sprintf("is the broadcast address of the VPC CIDR %s: give the gateway's own address", vpc)))
			}
		}
		return errs
	}
	return field.ErrorList{field.Invalid(path, gw.String(), fmt.Sprintf(
		"is outside the VPC (%s): the gateway must be a host in the nodes' VPC, reachable without a router", joinPrefixes(cfg.VPC)))}
}

// checkInsideRoute finds duplicates and destinations that contain others.
func checkInsideRoute(dests []destination) (errs field.ErrorList) {
	sorted := slices.Clone(dests)
	slices.SortStableFunc(sorted, func(a, b destination) int { return ComparePrefix(a.prefix, b.prefix) })
	// Prefixes nest or are disjoint: a stack of the open ones finds, for
	// each prefix, the closest one before it that contains it.
	var open []destination
	for _, d := range sorted {
		for len(open) > 0 && !open[len(open)-1].prefix.Contains(d.prefix.Addr()) {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			outer := open[len(open)-1]
			if outer.prefix == d.prefix {
				// The sort is stable: d is the later of the two in the list.
				errs = append(errs, field.Duplicate(d.path, d.raw))
				continue
			}
			errs = append(errs, field.Invalid(d.path, d.raw, fmt.Sprintf("lies inside %s (%s): list each address once", outer.raw, outer.path)))
			continue
		}
		open = append(open, d)
	}
	return errs
}

func checkClusterRanges(cfg Config, dests []destination) (errs field.ErrorList, warns []string) {
	ranges := cfg.Ranges()
	for _, d := range dests {
		var contained []string
		for _, r := range ranges {
			switch {
			case Covers(r.Prefix, d.prefix):
				errs = append(errs, field.Invalid(d.path, d.raw, fmt.Sprintf(
					"lies inside %s: cluster traffic never leaves via a gateway; route only addresses outside the cluster", r.What)))
			case d.prefix.Bits() < r.Prefix.Bits() && Covers(d.prefix, r.Prefix):
				contained = append(contained, r.What)
			}
		}
		if len(contained) > 0 {
			warns = append(warns, fmt.Sprintf("%s: %s contains %s; nodes carve these out and reach them directly",
				d.path, d.raw, strings.Join(contained, ", ")))
		}
	}
	return errs, warns
}

// checkOtherGroups rejects destinations that overlap a member of another
// group: which gateway would win is then a race between routers. Each
// message names every overlapping route once, with all its prefixes.
func checkOtherGroups(others *Index, sr *v1.StaticRoute, dests []destination) (errs field.ErrorList) {
	for _, d := range dests {
		type hit struct {
			route, group string
			prefixes     []string
		}
		var hits []*hit
		more := map[string]bool{} // routes past maxConflictsNamed
		var groups []string
		others.Overlaps(d.prefix, func(p netip.Prefix, name string) bool {
			r, other := otherGroup(others, sr, name)
			if !other {
				return true
			}
			if !slices.Contains(groups, r.Group) {
				groups = append(groups, r.Group)
			}
			for _, h := range hits {
				if h.route == name {
					h.prefixes = append(h.prefixes, p.String())
					return true
				}
			}
			if len(hits) == maxConflictsNamed {
				more[name] = true
				return len(more) < 100
			}
			hits = append(hits, &hit{route: name, group: r.Group, prefixes: []string{p.String()}})
			return true
		})
		if len(hits) == 0 {
			continue
		}
		named := make([]string, len(hits))
		for i, h := range hits {
			named[i] = fmt.Sprintf("%s of StaticRoute %q (group %q)", strings.Join(h.prefixes, ", "), h.route, h.group)
		}
		msg := "overlaps " + strings.Join(named, "; ")
		if len(more) > 0 {
			msg += fmt.Sprintf("; and %d more routes", len(more))
		}
		if len(groups) == 1 {
			msg += fmt.Sprintf("; destinations of different groups must not overlap: to make this route a failover member of that group, set spec.group: %s (and delete or narrow the other route otherwise)", groups[0])
		} else {
			msg += fmt.Sprintf("; destinations of different groups must not overlap, and a route belongs to one group: narrow this destination, or delete the routes of the other groups (%s)", strings.Join(groups, ", "))
		}
		errs = append(errs, field.Invalid(d.path, d.raw, msg))
	}
	return errs
}

// otherGroup is the indexed route name, and whether it belongs to
// another group than sr: an overlap with it is what checkOtherGroups
// refuses.
func otherGroup(others *Index, sr *v1.StaticRoute, name string) (Route, bool) {
	r, _ := others.Get(name)
	return r, name != sr.Name && r.Group != sr.EffectiveGroup()
}

// Blamed names the routes of other groups whose destinations overlap
// sr's, sorted: the only refusals of StaticRoute that depend on other
// objects. A webhook confirms them with the API server before it refuses,
// since its index may be stale (a cache after an outage) or hold what
// never was (a reservation for a forged review).
func Blamed(others *Index, sr *v1.StaticRoute) []string {
	dests, _, _ := parseDestinations(field.NewPath("spec", "destinations"), sr.Spec.Destinations)
	var out []string
	for _, d := range dests {
		if len(out) == maxBlamed {
			break
		}
		others.Overlaps(d.prefix, func(_ netip.Prefix, name string) bool {
			if _, other := otherGroup(others, sr, name); other && !slices.Contains(out, name) {
				out = append(out, name)
			}
			return len(out) < maxBlamed
		})
	}
	slices.Sort(out)
	return out
}

// maxBlamed bounds the routes a refusal is confirmed against: past it, a
// request overlaps so much that it is refused on what is known.
const maxBlamed = 20

// warnDropped warns when a new member, which becomes its group's active
// member, does not route a destination the active member routes now.
func warnDropped(others *Index, sr *v1.StaticRoute, dests []destination) []string {
	active, ok := others.Active(sr.EffectiveGroup())
	if !ok || active.Name == sr.Name {
		return nil
	}
	var dropped []string
	for _, p := range active.Destinations {
		covered := false
		for _, d := range dests {
			if Covers(d.prefix, p) {
				covered = true
				break
			}
		}
		if !covered {
			dropped = append(dropped, p.String())
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	const show = 5
	list := strings.Join(dropped[:min(len(dropped), show)], ", ")
	if len(dropped) > show {
		list += fmt.Sprintf(" and %d more", len(dropped)-show)
	}
	return []string{fmt.Sprintf(
		"StaticRoute %q becomes the active member of group %q and does not route %s, which its active member %q routes now: that traffic will leave by the nodes' own default route",
		sr.Name, sr.EffectiveGroup(), list, active.Name)}
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
