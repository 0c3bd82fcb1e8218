package summary

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/internal/kube"
)

// MinInterval is the least time between two status writes of one route:
// a failover across many nodes makes many reports, the route's status
// follows them at most once a second.
const MinInterval = time.Second

// ProgressInterval is the least time between two writes of one route's
// status that differ only in progress: counts of nodes, the nodes named,
// messages; not its state nor any condition's status or reason. Every
// status write goes to every router's watch (each decodes it to find the
// spec unchanged): at 400 nodes a failover took 7 writes, most of them
// "n of 400 applied" on the way, 2,800 decodes. Reaching the end (Applied
// turning True) is a change of reason and is written after MinInterval.
const ProgressInterval = 5 * time.Second

// writeAfter is how long after the last write of stored a route's status
// may become want.
func writeAfter(stored, want v1.StaticRouteStatus) time.Duration {
	if stored.State != want.State || stored.Group != want.Group || stored.ObservedGeneration != want.ObservedGeneration ||
		len(stored.Conditions) != len(want.Conditions) {
		return MinInterval
	}
	for i, c := range want.Conditions {
		if o := stored.Conditions[i]; o.Type != c.Type || o.Status != c.Status || o.Reason != c.Reason {
			return MinInterval
		}
	}
	return ProgressInterval
}

// Controller writes StaticRoute statuses. It runs on the leader only.
type Controller struct {
	Client client.Client // cached reads
	// Writer writes statuses (Client if nil). Give it a client with a
	// rate limit: 10,000 routes created at once would otherwise be
	// 10,000 status writes as fast as the API server takes them,
	// crowding out everything else, admission first.
	Writer client.Client
	// Events, if set, records one Event on a route per transition of its
	// status (see transition).
	Events EventRecorder

	mu        sync.Mutex
	lastWrite map[string]time.Time
}

// Index registers the cache index the summarizer reads groups by. Call it
// once, before the manager starts.
func (c *Controller) Index(ctx context.Context, mgr ctrl.Manager) error {
	// With 10,000 routes, listing them all for each event made every
	// create cost the webhook's process milliseconds of copying.
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1.StaticRoute{}, groupField, func(o client.Object) []string {
		return []string{o.(*v1.StaticRoute).EffectiveGroup()}
	}); err != nil {
		return fmt.Errorf("indexing StaticRoutes by group: %w", err)
	}
	return nil
}

// Run summarizes until ctx ends: a route is recomputed when it or a member
// of its group changes, or when a node reports on its group. Each call
// builds a new controller, since a controller starts only once and the
// summarizer runs once per term of leadership.
func (c *Controller) Run(ctx context.Context, mgr ctrl.Manager) error {
	c.mu.Lock()
	c.lastWrite = map[string]time.Time{}
	c.mu.Unlock()
	ctl, err := controller.NewUnmanaged("summarizer", controller.Options{Reconciler: c, SkipNameValidation: ptr.To(true)})
	if err != nil {
		return fmt.Errorf("summarizer: %w", err)
	}
	cache := mgr.GetCache()
	for _, src := range []source.Source{
		source.Kind[client.Object](cache, &v1.StaticRoute{}, &handler.EnqueueRequestForObject{}),
		// Another member matters by its spec, creation and deletion, not
		// by its status (which this controller writes).
		source.Kind[client.Object](cache, &v1.StaticRoute{}, handler.EnqueueRequestsFromMapFunc(c.groupMembers), predicate.GenerationChangedPredicate{}),
		source.Kind[client.Object](cache, &v1.StaticRouteNodeState{}, handler.EnqueueRequestsFromMapFunc(c.reportedGroups)),
	} {
		if err := ctl.Watch(src); err != nil {
			return fmt.Errorf("summarizer: %w", err)
		}
	}
	return ctl.Start(ctx)
}

// Reconcile writes one route's status if it changed.
func (c *Controller) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var sr v1.StaticRoute
	if err := c.Client.Get(ctx, req.NamespacedName, &sr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// Read only: neither list is copied out of the cache.
	var routes v1.StaticRouteList
	if err := c.Client.List(ctx, &routes, client.MatchingFields{groupField: sr.EffectiveGroup()}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing StaticRoutes: %w", err)
	}
	var states v1.StaticRouteNodeStateList
	if err := c.Client.List(ctx, &states, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing StaticRouteNodeStates: %w", err)
	}
	want := Status(&sr, routes.Items, states.Items)
	if sameStatus(sr.Status, want) {
		return ctrl.Result{}, nil
	}
	c.mu.Lock()
	wait := writeAfter(sr.Status, want) - time.Since(c.lastWrite[sr.Name])
	c.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	want.Conditions = kube.Carry(sr.Status.Conditions, want.Conditions)
	old := sr.Status
	sr.Status = want
	w := c.Writer
	if w == nil {
		w = c.Client
	}
	if err := w.Status().Update(ctx, &sr); err != nil {
		if apierrors.IsConflict(err) {
			// Another writer came first: judge again on what it wrote.
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return ctrl.Result{}, fmt.Errorf("writing the status of %s: %w", sr.Name, err)
	}
	c.mu.Lock()
	c.lastWrite[sr.Name] = time.Now()
	c.mu.Unlock()
	if e := transition(old, want); e != nil && c.Events != nil {
		c.Events.Eventf(&sr, nil, e.kind, e.reason, "Summarize", "%s", e.note)
	}
	return ctrl.Result{}, nil
}

func sameStatus(a, b v1.StaticRouteStatus) bool {
	a.Conditions = withoutTimes(a.Conditions)
	b.Conditions = withoutTimes(b.Conditions)
	return equality.Semantic.DeepEqual(a, b)
}

func withoutTimes(cs []metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, len(cs))
	for i, c := range cs {
		c.LastTransitionTime = metav1.Time{}
		c.ObservedGeneration = 0
		out[i] = c
	}
	return out
}

// groupMembers maps a route to every member of its group: a new member
// turns the old active one into a standby.
func (c *Controller) groupMembers(ctx context.Context, obj client.Object) []reconcile.Request {
	sr, ok := obj.(*v1.StaticRoute)
	if !ok {
		return nil
	}
	return c.routesOf(ctx, map[string]bool{sr.EffectiveGroup(): true})
}

// reportedGroups maps a node's report to the routes of the groups in it.
func (c *Controller) reportedGroups(ctx context.Context, obj client.Object) []reconcile.Request {
	ns, ok := obj.(*v1.StaticRouteNodeState)
	if !ok {
		return nil
	}
	groups := map[string]bool{}
	for _, g := range ns.Status.Groups {
		groups[g.Group] = true
	}
	return c.routesOf(ctx, groups)
}

func (c *Controller) routesOf(ctx context.Context, groups map[string]bool) []reconcile.Request {
	var out []reconcile.Request
	for g := range groups {
		var routes v1.StaticRouteList
		if err := c.Client.List(ctx, &routes, client.MatchingFields{groupField: g}, client.UnsafeDisableDeepCopy); err != nil {
			continue
		}
		for _, r := range routes.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: r.Name}})
		}
	}
	return out
}

// groupField indexes StaticRoutes by effective group in the cache.
const groupField = "staticroute.effectiveGroup"
