// Package router is the node router's control loop: on any change it
// recomputes the node's whole desired state from the cache and the kernel,
// applies it, and reports the outcome in the node's StaticRouteNodeState.
package router

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"runtime/trace"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// Config is what the router is told by flags.
type Config struct {
	NodeName string
	VPCLink  string // empty: the link holding an address inside Cluster.VPC
	// NodeIP is the node's address (the downward API's status.hostIP):
	// when the layout sets no VPC, the VPC link is the one holding it.
	NodeIP netip.Addr
	// Cluster is the layout as set (file and flags); what it leaves out
	// is discovered at each reconcile (Layout).
	Cluster    validate.Config
	NeverRoute []netip.Prefix
	Resync     time.Duration
	// AdoptLegacyRoutes removes the old operator's main-table routes
	// for the StaticRoutes (policy.LegacyRoutes).
	AdoptLegacyRoutes bool
	// RulePriority is the steering rule's, for the node state (0: not
	// reported); LaneTableBase the lanes' tables' (policy.Options).
	RulePriority, LaneTableBase int
}

// Cache is what the router reads, as its informers hold it. Objects in it
// are shared with the informers: read, never written.
type Cache struct {
	Node   cache.Store // this node's Node only
	Routes cache.Store // every StaticRoute
	Slices cache.Store // the default/kubernetes EndpointSlices
	// Ranges are the pod and Service ranges the layout leaves out, as
	// the Nodes and the ServiceCIDRs say (kube.Discover), computed again
	// only when those change; nil when the layout sets both.
	Ranges *kube.Cached[validate.Discovered]
}

// Reconciler programs one node.
type Reconciler struct {
	Cache    Cache
	Kernel   Steering
	Datapath Datapath
	Config   Config
	Metrics  *Metrics
	Reporter NodeReporter
	// Health runs the health checks; nil: none (every gateway is up).
	Health Health
	// Wake asks for a reconcile after a while: when a group held on its
	// member (the damper) may switch.
	Wake func(after time.Duration)
	// Clock, if set, tells when the change this reconcile takes up
	// arrived: a switch observes event → kernel.
	Clock *EventClock
	// now is the clock (tests set it).
	now func() time.Time

	// The last input's key and its desired state: a resync with nothing
	// changed need not compute 10,000 prefixes again.
	lastKey     [sha256.Size]byte
	lastDesired *policy.Desired
	// applied is each group as last applied (nil before the first
	// successful apply): a change of its active
	// member that health made is an automatic failover or failback.
	applied map[string]policy.Group
	// damper keeps each group from switching more than once per probe
	// period.
	damper group.Damper
}

// compute is policy.Compute, skipped when the input is the last one.
func (r *Reconciler) compute(in policy.Input) policy.Desired {
	key := inputKey(in)
	if r.lastDesired != nil && key == r.lastKey {
		return *r.lastDesired
	}
	d := policy.Compute(in)
	r.lastKey, r.lastDesired = key, &d
	return d
}

// inputKey identifies an input: every route by its UID and generation
// (the API server bumps it on a change of spec, and on delete with a
// finalizer pending; not on status writes, which the computation does not
// read), and all the rest as printed.
func inputKey(in policy.Input) [sha256.Size]byte {
	h := sha256.New()
	for _, sr := range in.Routes {
		fmt.Fprintf(h, "%s %s %d %t\n", sr.Name, sr.UID, sr.Generation, sr.DeletionTimestamp != nil)
	}
	health := make([]string, 0, len(in.Health))
	for p, s := range in.Health {
		health = append(health, p.String()+"="+s.String())
	}
	slices.Sort(health)
	holds := make([]string, 0, len(in.Hold)+len(in.Carried))
	for g, m := range in.Hold {
		holds = append(holds, g+"="+m)
	}
	for g, gw := range in.Carried {
		holds = append(holds, g+" via "+gw.String())
	}
	slices.Sort(holds)
	fmt.Fprintf(h, "%+v\n%+v\n%v\n%v\n%v\n%t\n", in.Node, in.Cluster, in.NeverRoute, health, holds, in.AdoptLegacy)
	return [sha256.Size]byte(h.Sum(nil))
}

// Reconcile recomputes and applies the whole node, whatever changed.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	start := time.Now()
	// A region in an execution trace (pprof's /debug/pprof/trace): what
	// else ran while a switch waited.
	defer trace.StartRegion(ctx, "reconcile").End()
	err := r.reconcile(ctx)
	r.Metrics.observe(time.Since(start), err)
	return err
}

func (r *Reconciler) reconcile(ctx context.Context) error {
	t := startTiming(r.Clock)
	g, err := r.gather(ctx, &t)
	if err != nil || g == nil {
		return err
	}
	d := r.decide(&g.in, g.health, g.now, &t)
	applied, err := r.apply(ctx, d, &t)
	if applied.Steered {
		r.afterApply(ctx, d, g.now)
	}
	o := Outcome{Node: g.node, Routes: g.in.Routes, Desired: d, Facts: g.in.Node, Cluster: g.in.Cluster, Health: g.health, Err: err,
		LaneTableBase: r.Config.LaneTableBase, Draining: applied.Draining}
	if r.Config.RulePriority != 0 {
		o.Steering = &v1.NodeSteering{RulePriority: int32(r.Config.RulePriority), Table: int32(applied.Table)}
	}
	if rerr := r.Reporter.Report(ctx, o); rerr != nil {
		logr.FromContextOrDiscard(ctx).Error(rerr, "writing the node state")
	}
	if err != nil {
		return err
	}
	r.Metrics.LastSuccess.SetToCurrentTime()
	return nil
}

// timing is what one reconcile measures, for the logs and the metrics.
type timing struct {
	started  time.Time
	cpuStart time.Duration
	event    time.Time // the oldest change this reconcile answers
	pending  bool      // there was one
	readNode time.Duration
	compute  time.Duration
}

// startTiming takes the pending change first: a change that arrives while
// this reconcile runs is the next one's.
func startTiming(c *EventClock) timing {
	t := timing{started: time.Now(), cpuStart: processCPU()}
	if c != nil {
		t.event, t.pending = c.Take()
	}
	return t
}

// gathered is what a reconcile computes from: the Node, the input and
// the health it was computed with.
type gathered struct {
	node   *corev1.Node
	in     policy.Input
	health map[group.Path]group.Health
	now    time.Time
}

// gather reads the Node, the routes and the node's links: nil, nil while
// the Node is not known (the kernel is left as it is).
func (r *Reconciler) gather(ctx context.Context, t *timing) (*gathered, error) {
	obj, found, err := r.Cache.Node.GetByKey(r.Config.NodeName)
	if err != nil {
		return nil, fmt.Errorf("reading Node %s from the cache: %w", r.Config.NodeName, err)
	}
	node, ok := obj.(*corev1.Node)
	if !found || !ok {
		// Without its Node the router cannot match selectors.
		logr.FromContextOrDiscard(ctx).Info("waiting for the Node object", "node", r.Config.NodeName)
		return nil, nil
	}
	routes := listed[*v1.StaticRoute](r.Cache.Routes)
	// The input key and the reports must not depend on the cache's order.
	slices.SortFunc(routes, func(a, b *v1.StaticRoute) int { return strings.Compare(a.Name, b.Name) })
	readStart := time.Now()
	facts, err := r.Kernel.ReadNode(r.VPCHint())
	if err != nil {
		return nil, fmt.Errorf("reading the node's links: %w", err)
	}
	t.readNode = time.Since(readStart)
	cluster, err := r.Layout(facts)
	if err != nil {
		return nil, err
	}
	cluster.APIServers = append(cluster.APIServers, r.apiEndpoints()...)
	facts.Labels = node.Labels
	g := &gathered{node: node, now: time.Now()}
	g.in = policy.Input{Node: facts, Cluster: cluster, NeverRoute: r.Config.NeverRoute, Routes: routes, AdoptLegacy: r.Config.AdoptLegacyRoutes}
	g.in.Carried, g.in.LaneTo = r.carriedNow(ctx, routes)
	if r.now != nil {
		g.now = r.now()
	}
	g.in.Now = g.now
	if r.Health != nil {
		g.health = r.Health.Health()
	}
	return g, nil
}

// decide computes the desired state from in and the health, and asks to
// be woken when a damped gateway is released or a held group may switch.
func (r *Reconciler) decide(in *policy.Input, health map[group.Path]group.Health, now time.Time, t *timing) policy.Desired {
	var wake time.Duration // when a damped gateway is released
	in.Health, wake = healthStates(health, now)
	r.Metrics.dampedGateways(in.Health)
	hold := r.holds(in, now)
	computeStart := time.Now()
	d := r.compute(*in)
	t.compute = time.Since(computeStart)
	if hold > 0 && (wake == 0 || hold < wake) && slices.ContainsFunc(d.Groups, func(g policy.Group) bool { return g.Selection == v1.SelectionHeld }) {
		wake = hold
	}
	if d := drainWake(d, now); d > 0 && (wake == 0 || d < wake) {
		wake = d
	}
	if r.Wake != nil && wake > 0 {
		r.Wake(wake)
	}
	return d
}

// apply writes d through the datapath, and counts and logs what it did:
// a switch even if a later step failed, since the traffic took the new
// path.
func (r *Reconciler) apply(ctx context.Context, d policy.Desired, t *timing) (datapath.Applied, error) {
	applyStart := time.Now()
	region := trace.StartRegion(ctx, "kernel apply")
	applied, err := r.Datapath.Apply(d)
	region.End()
	// The process's CPU time over the reconcile up to the end of Apply: on
	// a shared, busy machine sinceEvent includes time spent waiting for a
	// core, and this is what the router itself spent.
	cpu := processCPU() - t.cpuStart
	var sinceEvent, queued time.Duration
	if t.pending && (applied.Swapped || applied.Moved > 0) {
		sinceEvent = applyStart.Add(applied.ToSwitch).Sub(t.event)
		// The part spent before this reconcile started: waiting for the
		// one before it, or for a core.
		queued = t.started.Sub(t.event)
		r.Metrics.EventToKernel.Observe(sinceEvent.Seconds())
	}
	if applied.Traffic != nil {
		r.Metrics.countTraffic(applied.Traffic)
	}
	if applied.FirewallChanged {
		r.Metrics.resetTraffic()
	}
	log := logr.FromContextOrDiscard(ctx)
	kv := []any{"toSwitch", applied.ToSwitch.String(), "sinceEvent", sinceEvent.String(), "queued", queued.String(), "readNode", t.readNode.String(), "compute", t.compute.String(), "cpu", cpu.String()}
	if applied.Swapped {
		r.Metrics.Swaps.Inc()
		log.Info("switched steering table", append([]any{"table", applied.Table, "routes", applied.Routes, "groups", len(d.Groups)}, kv...)...)
	}
	if applied.Moved > 0 {
		r.Metrics.Moves.Add(float64(applied.Moved))
		log.Info("moved groups to new gateways", append([]any{"groups", applied.Moved}, kv...)...)
	}
	for _, l := range applied.LegacyRemoved {
		log.Info("removed the old operator's route from the main table", "route", l.String())
	}
	if len(applied.MarksTurnedOn) > 0 {
		log.Info("set src_valid_mark=1: strict rp_filter checks inbound sources with their mark", "links", applied.MarksTurnedOn)
	}
	return applied, err
}

// afterApply records what now carries each group (the damper, the
// automatic-switch log) and gives the health monitor its probes.
func (r *Reconciler) afterApply(ctx context.Context, d policy.Desired, now time.Time) {
	for _, g := range d.Groups {
		r.damper.Record(g.Name, g.Active, now)
	}
	r.damper.Forget(func(name string) bool {
		return slices.ContainsFunc(d.Groups, func(g policy.Group) bool { return g.Name == name })
	})
	r.noteAutomatic(ctx, d)
	if r.Health != nil {
		r.Health.Set(ctx, d.Probes)
	}
}

// drainRefresh is how often a node state's count of draining connections
// is refreshed while a drain lasts.
const drainRefresh = 5 * time.Second

// drainWake is how long until a reconcile must run for a drain: when the
// first ends, or, sooner, to refresh the count of draining connections
// (0: none drains).
func drainWake(d policy.Desired, now time.Time) time.Duration {
	var wake time.Duration
	for _, g := range d.Groups {
		if g.Drain == nil {
			continue
		}
		w := min(max(g.Drain.Until.Sub(now), time.Millisecond), drainRefresh)
		if wake == 0 || w < wake {
			wake = w
		}
	}
	return wake
}

// holds sets in.Hold from the damper (group.Damper.Holds): a group that
// switched less than its Period ago keeps its member. It returns how
// long until the first hold ends (0: none).
func (r *Reconciler) holds(in *policy.Input, now time.Time) time.Duration {
	periods := make(map[string]time.Duration, len(r.applied))
	for name, g := range r.applied {
		var probes []group.Probe
		for _, m := range g.Members {
			if !m.Checked {
				continue
			}
			for _, gw := range m.Gateways {
				probes = append(probes, gw.Probe)
			}
		}
		periods[name] = group.Period(probes)
	}
	var first time.Duration
	in.Hold, first = r.damper.Holds(periods, now)
	return first
}

// noteAutomatic logs and counts the groups whose active member health
// changed: a switch to an older member because newer ones' gateways went
// down, or back.
func (r *Reconciler) noteAutomatic(ctx context.Context, d policy.Desired) {
	log := logr.FromContextOrDiscard(ctx)
	next := make(map[string]policy.Group, len(d.Groups))
	for _, g := range d.Groups {
		next[g.Name] = g
		prev, ok := r.applied[g.Name]
		if !ok || prev.Active == g.Active || prev.Selection == g.Selection && g.Selection == v1.SelectionNewest {
			continue
		}
		what := "failed over automatically"
		if g.Selection == v1.SelectionNewest {
			what = "failed back automatically"
		}
		r.Metrics.AutoSwitches.Inc()
		log.Info(what, "group", g.Name, "from", prev.Active, "to", g.Active, "gateway", g.Gateway.String(), "selection", string(g.Selection))
	}
	r.applied = next
}

// listed is every object of type T in s.
func listed[T any](s cache.Store) []T {
	all := s.List()
	out := make([]T, 0, len(all))
	for _, o := range all {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// VPCHint is how the router finds its VPC link.
func (r *Reconciler) VPCHint() datapath.VPCHint {
	return datapath.VPCHint{Link: r.Config.VPCLink, CIDRs: r.Config.Cluster.VPC, NodeIP: r.Config.NodeIP}
}

// Layout is the cluster's layout on this node: what the layout sets, and
// for what it leaves out, what the node and the cluster say: the prefix of
// the node's address on its VPC link (facts), every Node's podCIDRs, the
// ServiceCIDRs. A setting neither set nor discovered is an error naming
// it.
func (r *Reconciler) Layout(facts policy.Node) (validate.Config, error) {
	var d validate.Discovered
	if r.Cache.Ranges != nil {
		d = r.Cache.Ranges.Get()
	}
	if facts.VPCPrefix.IsValid() {
		d.VPC = []netip.Prefix{facts.VPCPrefix}
	}
	return validate.Resolve(r.Config.Cluster, d)
}

// apiEndpoints are the API server's addresses from the default/kubernetes
// EndpointSlice: steering them via a gateway would cut the node off.
func (r *Reconciler) apiEndpoints() []netip.Addr {
	var out []netip.Addr
	for _, s := range listed[*discoveryv1.EndpointSlice](r.Cache.Slices) {
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() {
					out = append(out, ip)
				}
			}
		}
	}
	return out
}

// processCPU is the CPU time this process has used, every thread, to the
// nanosecond (the scheduler's own count: getrusage's moves in ticks of
// several milliseconds): what a reconcile costs, whether or not it got a
// core at once.
func processCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
