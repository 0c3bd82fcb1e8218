// Command node-router runs on every node (a DaemonSet, hostNetwork,
// CAP_NET_ADMIN): it steers the destinations of the StaticRoutes that
// select its node via their group's active gateway, in a routing table it
// swaps atomically, and reports what it did in the node's
// StaticRouteNodeState.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/internal/router"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

type options struct {
	nodeName, vpcLink                    string
	vpc, pod, service, apiServers, never string
	podLinks, tables, mark               string
	priority, markPriority, protocol     int
	resync                               time.Duration
	cleanup                              bool
	metricsAddr, probeAddr, pprofAddr    string
}

func main() {
	o := options{}
	def := policy.DefaultOptions()
	flag.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	flag.StringVar(&o.vpcLink, "vpc-link", "", "the VPC interface (default: the one holding an address inside --vpc-cidr)")
	flag.StringVar(&o.vpc, "vpc-cidr", "", "comma-separated VPC CIDRs (required): never steered; gateways lie in them")
	flag.StringVar(&o.pod, "pod-cidr", "", "comma-separated pod CIDRs: never steered")
	flag.StringVar(&o.service, "service-cidr", "", "comma-separated service CIDRs: never steered")
	flag.StringVar(&o.apiServers, "api-server-address", "", "comma-separated API server addresses, besides the kubeconfig host and the default/kubernetes EndpointSlice: never steered")
	flag.StringVar(&o.never, "never-route", "", "comma-separated CIDRs never steered")
	flag.StringVar(&o.podLinks, "pod-interfaces", "lxc*,cali*,cilium_*,veth*", "comma-separated pod interface names (a trailing * matches a prefix): connections from them are not inbound")
	flag.StringVar(&o.tables, "tables", fmt.Sprintf("%d,%d", def.Tables[0], def.Tables[1]), "the two steering tables (blue,green)")
	flag.IntVar(&o.priority, "rule-priority", def.Priority, "priority of the steering rule (after local and Cilium's, before main)")
	flag.IntVar(&o.markPriority, "mark-rule-priority", def.MarkPriority, "priority of the fwmark rule for replies of inbound connections (before the steering rule)")
	flag.StringVar(&o.mark, "mark", fmt.Sprintf("%#x", def.Mark), "the one connmark/mark bit this router owns")
	flag.IntVar(&o.protocol, "route-protocol", def.Protocol, "route protocol number tagging our routes")
	flag.DurationVar(&o.resync, "resync", time.Second, "full reconcile period: drift (a deleted rule, a flushed table) is repaired within it")
	flag.BoolVar(&o.cleanup, "cleanup", false, "remove every rule, route and nftables table of ours, and exit")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":9402", "Prometheus metrics address (0 disables)")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":9403", "/healthz and /readyz address")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of net/http/pprof, for profiling (0, the default, disables it; e.g. 127.0.0.1:9404)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	// A node agent's memory is paid on every node, and its live heap is
	// small (~8 MB at 1,000 routes): collect at half Go's default growth
	// unless GOGC says otherwise, and keep no allocation profile unless
	// profiling is on.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if o.pprofAddr == "0" {
		goruntime.MemProfileRate = 0
	}
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "node-router stopped")
		os.Exit(1)
	}
}

// withoutStatus is a cache transform that strips managed fields and, with
// clear, the status of T.
func withoutStatus[T client.Object](clear func(T)) toolscache.TransformFunc {
	strip := cache.TransformStripManagedFields()
	return func(obj any) (any, error) {
		obj, err := strip(obj)
		if t, ok := obj.(T); ok && err == nil {
			clear(t)
		}
		return obj, err
	}
}

func policyOptions(o options) (policy.Options, error) {
	p := policy.DefaultOptions()
	var errs []error
	tables := strings.Split(o.tables, ",")
	if len(tables) != 2 {
		errs = append(errs, fmt.Errorf("--tables: want two table numbers, like 52101,52102"))
	} else {
		for i, s := range tables {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 || n == 253 || n == 254 || n == 255 {
				errs = append(errs, fmt.Errorf("--tables: %q is not a free table number", s))
			}
			p.Tables[i] = n
		}
		if p.Tables[0] == p.Tables[1] {
			errs = append(errs, fmt.Errorf("--tables: the two tables must differ"))
		}
	}
	mark, err := strconv.ParseUint(o.mark, 0, 32)
	if err != nil || mark == 0 || mark&(mark-1) != 0 {
		errs = append(errs, fmt.Errorf("--mark: %q is not a single bit such as 0x40", o.mark))
	}
	p.Mark = uint32(mark)
	if o.markPriority >= o.priority {
		errs = append(errs, fmt.Errorf("--mark-rule-priority (%d) must come before --rule-priority (%d)", o.markPriority, o.priority))
	}
	if o.priority <= 0 || o.priority >= 32766 {
		errs = append(errs, fmt.Errorf("--rule-priority %d: must lie between the local table (0) and main (32766)", o.priority))
	}
	if o.protocol <= 4 || o.protocol > 255 {
		errs = append(errs, fmt.Errorf("--route-protocol %d: pick a number above 4 (kernel, boot, static are taken) and at most 255", o.protocol))
	}
	p.Priority, p.MarkPriority, p.Protocol = o.priority, o.markPriority, o.protocol
	return p, errors.Join(errs...)
}

func routerConfig(o options) (router.Config, error) {
	c := router.Config{NodeName: o.nodeName, VPCLink: o.vpcLink, Resync: o.resync}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	c.Cluster.VPC, err = validate.ParsePrefixes("vpc-cidr", o.vpc)
	add(err)
	c.Cluster.Pod, err = validate.ParsePrefixes("pod-cidr", o.pod)
	add(err)
	c.Cluster.Service, err = validate.ParsePrefixes("service-cidr", o.service)
	add(err)
	c.Cluster.APIServers, err = validate.ParseAddrs("api-server-address", o.apiServers)
	add(err)
	c.NeverRoute, err = validate.ParsePrefixes("never-route", o.never)
	add(err)
	for _, s := range strings.Split(o.podLinks, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.PodLinks = append(c.PodLinks, s)
		}
	}
	if len(c.Cluster.VPC) == 0 && err == nil {
		add(errors.New("--vpc-cidr is required: give the CIDR(s) of the VPC the nodes and gateways share"))
	}
	if c.NodeName == "" {
		add(errors.New("--node-name (or $NODE_NAME from the downward API) is required"))
	}
	return c, errors.Join(errs...)
}

func run(ctx context.Context, o options) error {
	popts, err := policyOptions(o)
	if err != nil {
		return err
	}
	kernel, err := policy.NewKernel(netns.None(), popts)
	if err != nil {
		return err
	}
	defer kernel.Close()
	nft, err := policy.NewNFTConn(-1)
	if err != nil {
		return err
	}
	fw := &policy.Firewall{Conn: nft, Opts: popts}
	if o.cleanup {
		if err := errors.Join(kernel.Cleanup(), fw.Cleanup()); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		ctrl.Log.Info("removed every rule, route and nftables table of ours")
		return nil
	}
	cfg, err := routerConfig(o)
	if err != nil {
		return err
	}
	if err := router.EnableSrcValidMark(); err != nil {
		ctrl.Log.Error(err, "inbound connections from inside steered prefixes will fail strict rp_filter")
	} else {
		ctrl.Log.Info("set net.ipv4.conf.all.src_valid_mark=1: strict rp_filter checks inbound sources with their mark")
	}

	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if u, err := url.Parse(restCfg.Host); err == nil {
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.Is4() {
			cfg.Cluster.APIServers = append(cfg.Cluster.APIServers, ip)
		}
	}
	// Only the kinds the router reads: all of client-go's scheme costs
	// megabytes on every node.
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, v1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress:       o.pprofAddr,
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: map[client.Object]cache.ByObject{
			// Only this node, and only the API server's EndpointSlice:
			// watch traffic stays linear in the number of nodes. Of
			// both, and of the routes, the router reads no status (a
			// node's lists its images: tens of kilobytes).
			&corev1.Node{}: {
				Field:     fields.OneTermEqualSelector("metadata.name", cfg.NodeName),
				Transform: withoutStatus(func(n *corev1.Node) { n.Status = corev1.NodeStatus{} }),
			},
			&v1.StaticRoute{}: {Transform: withoutStatus(func(sr *v1.StaticRoute) { sr.Status = v1.StaticRouteStatus{} })},
			&discoveryv1.EndpointSlice{}: {
				Namespaces: map[string]cache.Config{"default": {}},
				Label:      labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: "kubernetes"}),
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	metrics, err := router.NewMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	r := &router.Reconciler{
		Client: mgr.GetClient(), Kernel: kernel, Firewall: fw, Config: cfg, Metrics: metrics,
		Reporter: &router.Reporter{Client: mgr.GetClient(), Events: mgr.GetEventRecorder("staticroute-node-router")},
	}
	kernelEvents := make(chan event.GenericEvent, 1)
	// Any link change, or a route change in our tables, may have taken
	// routes of ours away: compare with the kernel at the next apply.
	go watchKernel(ctx, kernelEvents, func(table int) {
		if table == policy.Lost || table == popts.Tables[0] || table == popts.Tables[1] {
			kernel.Invalidate()
		}
	})
	node := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: cfg.NodeName}}}
	})
	if err := ctrl.NewControllerManagedBy(mgr).Named("node-router").
		// Status writes (the summarizer's, the kubelet's) change nothing
		// here: only specs, deletes and the node's labels do.
		Watches(&v1.StaticRoute{}, node, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Node{}, node, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&discoveryv1.EndpointSlice{}, node).
		WatchesRawSource(source.Channel(kernelEvents, node)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("starting", "node", cfg.NodeName, "vpc", cfg.Cluster.VPC, "tables", popts.Tables, "mark", fmt.Sprintf("%#x", popts.Mark))
	// SIGTERM stops the manager and leaves the kernel as it is: a restart
	// or rolling update adopts it without dropping or leaking a packet.
	return mgr.Start(ctx)
}

// watchKernel turns route and link changes into reconciles, so that drift
// is repaired at once, and tells the kernel applier when routes of our
// tables (or links: policy.Lost) changed behind its back; rule changes
// have no event here and wait for the resync.
func watchKernel(ctx context.Context, out chan<- event.GenericEvent, routeChanged func(table int)) {
	err := policy.WatchKernel(ctx, netns.None(), func(table int) {
		routeChanged(table)
		select {
		case out <- event.GenericEvent{Object: &corev1.Node{}}:
		default: // a reconcile is already pending
		}
	})
	if err != nil {
		ctrl.Log.Error(err, "no route and link events: drift waits for the resync")
	}
}
