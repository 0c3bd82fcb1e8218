// Package router is the node router's control loop: on any change it
// recomputes the node's whole desired state from the cache and the kernel,
// applies it, and reports the outcome in the node's StaticRouteNodeState.
package router

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// Config is what the router is told by flags.
type Config struct {
	NodeName   string
	VPCLink    string // empty: the link holding an address inside Cluster.VPC
	Cluster    validate.Config
	NeverRoute []netip.Prefix
	PodLinks   []string
	Resync     time.Duration
}

// Reconciler programs one node.
type Reconciler struct {
	Client   client.Client // cached reads; node state writes
	Kernel   *policy.Kernel
	Firewall *policy.Firewall
	Config   Config
	Metrics  *Metrics
	Reporter *Reporter

	// The last input's key and its desired state: a resync with nothing
	// changed need not compute 10,000 prefixes again.
	lastKey     [sha256.Size]byte
	lastDesired *policy.Desired
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
	fmt.Fprintf(h, "%+v\n%+v\n%v\n", in.Node, in.Cluster, in.NeverRoute)
	return [sha256.Size]byte(h.Sum(nil))
}

// Reconcile ignores which object changed: the whole node is recomputed.
func (r *Reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	err := r.reconcile(ctx)
	r.Metrics.observe(time.Since(start), err)
	if err != nil {
		return ctrl.Result{}, err // logged by controller-runtime, retried with backoff
	}
	return ctrl.Result{RequeueAfter: r.Config.Resync}, nil
}

func (r *Reconciler) reconcile(ctx context.Context) error {
	log := logf.FromContext(ctx)
	var node corev1.Node
	if err := r.Client.Get(ctx, types.NamespacedName{Name: r.Config.NodeName}, &node); err != nil {
		if apierrors.IsNotFound(err) {
			// Without its Node the router cannot match selectors: it
			// leaves the kernel as it is.
			log.Info("waiting for the Node object", "node", r.Config.NodeName)
			return nil
		}
		return fmt.Errorf("reading Node %s: %w", r.Config.NodeName, err)
	}
	var routes v1.StaticRouteList
	// Read only: the cache's objects are not copied each second.
	if err := r.Client.List(ctx, &routes, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing StaticRoutes: %w", err)
	}
	cluster := r.Config.Cluster
	cluster.APIServers = append(cluster.APIServers, r.apiEndpoints(ctx)...)

	facts, err := r.Kernel.ReadNode(r.Config.VPCLink, cluster.VPC)
	if err != nil {
		return fmt.Errorf("reading the node's links: %w", err)
	}
	facts.Labels = node.Labels
	facts.PodLinks = r.Config.PodLinks
	in := policy.Input{Node: facts, Cluster: cluster, NeverRoute: r.Config.NeverRoute}
	byName := make(map[string]*v1.StaticRoute, len(routes.Items))
	for i := range routes.Items {
		in.Routes = append(in.Routes, &routes.Items[i])
		byName[routes.Items[i].Name] = &routes.Items[i]
	}
	d := r.compute(in)

	packets, err := r.Firewall.Counters()
	if err == nil {
		r.Metrics.countTraffic(packets)
	}
	applied, applyErr := r.Kernel.Apply(d)
	if applyErr == nil && applied.Swapped {
		r.Metrics.Swaps.Inc()
		log.Info("switched steering table", "table", applied.Table, "routes", applied.Routes, "toSwitch", applied.ToSwitch, "groups", len(d.Groups))
	}
	if applyErr == nil && applied.Moved > 0 {
		r.Metrics.Moves.Add(float64(applied.Moved))
		log.Info("moved groups to new gateways", "groups", applied.Moved, "toSwitch", applied.ToSwitch)
	}
	var fwErr error
	if applyErr == nil {
		var changed bool
		changed, fwErr = r.Firewall.Apply(d)
		if changed && fwErr == nil {
			r.Metrics.resetTraffic()
		}
	}
	if err := r.Reporter.Report(ctx, &node, byName, d, facts, cluster, firstErr(applyErr, fwErr)); err != nil {
		log.Error(err, "writing the node state")
	}
	if err := firstErr(applyErr, fwErr); err != nil {
		return err
	}
	r.Metrics.LastSuccess.SetToCurrentTime()
	return nil
}

// apiEndpoints are the API server's addresses from the default/kubernetes
// EndpointSlice: steering them via a gateway would cut the node off.
func (r *Reconciler) apiEndpoints(ctx context.Context) []netip.Addr {
	var eps discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &eps, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: "kubernetes"}); err != nil {
		return nil
	}
	var out []netip.Addr
	for _, s := range eps.Items {
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

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// EnableSrcValidMark sets net.ipv4.conf.all.src_valid_mark=1 in the
// router's own network namespace: strict rp_filter then checks an inbound
// packet's source with its mark, so a client inside a steered prefix is
// not dropped.
func EnableSrcValidMark() error {
	const p = "/proc/sys/net/ipv4/conf/all/src_valid_mark"
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("setting src_valid_mark=1 (inbound clients inside a steered prefix fail strict rp_filter without it): %w", err)
	}
	return nil
}
