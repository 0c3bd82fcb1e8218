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
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	goruntime "runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/vishvananda/netns"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/staticroute/staticroute/internal/health"
	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/internal/router"
	httpserve "github.com/staticroute/staticroute/internal/serve"
	"github.com/staticroute/staticroute/internal/version"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

type options struct {
	nodeName, nodeIP, vpcLink                    string
	layout, vpc, pod, service, apiServers, never string
	podLinks, tables, mark                       string
	priority, markPriority, protocol             int
	probePriority, probeTableBase                int
	resync                                       time.Duration
	cleanup, adoptLegacy                         bool
	metricsAddr, probeAddr, pprofAddr            string
	kubeconfig                                   string
	verbosity                                    int
	damping                                      group.Damping
}

func main() {
	o := options{}
	def := policy.DefaultOptions()
	flag.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	flag.StringVar(&o.nodeIP, "node-ip", os.Getenv("NODE_IP"), "this node's address, its InternalIP (default $NODE_IP, the downward API's status.hostIP): when the layout sets no VPC, the VPC is this address's prefix on its link")
	flag.StringVar(&o.vpcLink, "vpc-link", "", "the VPC interface (default: the one holding an address inside --vpc-cidr, or else --node-ip)")
	flag.StringVar(&o.layout, "layout", "", "the cluster's layout file (layout.yaml of the ConfigMap staticroute-layout, mounted): vpcCIDRs, podCIDRs, serviceCIDRs, apiServerAddresses; a flag below that is given overrides its field")
	flag.StringVar(&o.vpc, "vpc-cidr", "", "comma-separated VPC CIDRs: never steered; gateways lie in them (not given here or in --layout: the prefix of --node-ip on its link)")
	flag.StringVar(&o.pod, "pod-cidr", "", "comma-separated pod CIDRs: never steered (not given here or in --layout: every Node's spec.podCIDRs)")
	flag.StringVar(&o.service, "service-cidr", "", "comma-separated service CIDRs: never steered (not given here or in --layout: the ServiceCIDR objects)")
	flag.StringVar(&o.apiServers, "api-server-address", "", "comma-separated API server addresses, besides the kubeconfig host and the default/kubernetes EndpointSlice: never steered")
	flag.StringVar(&o.never, "never-route", "", "comma-separated CIDRs never steered")
	flag.StringVar(&o.podLinks, "pod-interfaces", "", "deprecated and ignored: a connection is inbound when it is addressed to the node from outside --vpc-cidr and --pod-cidr, whatever link it arrives on")
	flag.StringVar(&o.tables, "tables", fmt.Sprintf("%d,%d", def.Tables[0], def.Tables[1]), "the two steering tables (blue,green)")
	flag.IntVar(&o.priority, "rule-priority", def.Priority, "priority of the steering rule (after local and Cilium's, before main)")
	flag.IntVar(&o.markPriority, "mark-rule-priority", def.MarkPriority, "priority of the fwmark rule for replies of inbound connections (before the steering rule)")
	flag.StringVar(&o.mark, "mark", fmt.Sprintf("%#x", def.Mark), "the one connmark/mark bit this router owns; health-check probes carry it with a slot number in the six bits below it")
	flag.IntVar(&o.probePriority, "probe-rule-priority", def.ProbePriority, "priority of the rules that send health-check probes to their gateway (before --mark-rule-priority)")
	flag.IntVar(&o.probeTableBase, "probe-table-base", def.ProbeTableBase, "health-check probes of slot n (1..63) look up table base+n")
	flag.IntVar(&o.protocol, "route-protocol", def.Protocol, "route protocol number tagging our routes")
	flag.DurationVar(&o.resync, "resync", 30*time.Second, "full reconcile period: a safety net; route, rule, link, nexthop and nftables events repair drift at once, this catches what no event reports (src_valid_mark turned off through /proc/sys)")
	flag.BoolVar(&o.cleanup, "cleanup", false, "remove every rule, route and nftables table of ours, and exit")
	flag.BoolVar(&o.adoptLegacy, "adopt-legacy-routes", false, "remove the main-table routes that the old k8s-staticroute-operator left behind: those whose destination and gateway are exactly a StaticRoute's (each is logged)")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":9402", "Prometheus metrics address (0 disables)")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":9403", "/healthz and /readyz address")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of net/http/pprof, for profiling (0, the default, disables it; e.g. 127.0.0.1:9404)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)")
	dd := group.DefaultDamping()
	flag.DurationVar(&o.damping.HalfLife, "flap-half-life", dd.HalfLife, "flap damping of health-checked gateways: every change of a gateway's health costs 1000, halving every this long; 0 turns damping off")
	flag.Float64Var(&o.damping.Suppress, "flap-suppress", dd.Suppress, "a gateway whose flap penalty rises above this is damped: it carries its group only if no other member is up")
	flag.Float64Var(&o.damping.Reuse, "flap-reuse", dd.Reuse, "a damped gateway is released once its penalty has decayed below this")
	flag.DurationVar(&o.damping.MaxSuppress, "flap-max-suppress", dd.MaxSuppress, "the longest a gateway stays damped after its last change")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.IntVar(&o.verbosity, "v", 0, "log verbosity: 0 logs changes and errors, 1 also every reconcile and how long it took")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String("node-router"))
		return
	}
	log := newLogger(o.verbosity)
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
	// One reconcile loop is the router's work, and it is short: a second
	// thread running Go code only adds wake-ups and hand-offs between
	// threads, which cost more than the work (6.1 ms of CPU per router
	// and failover on one against 9.3 ms on two, bench-scale at 200
	// nodes). Go would take one per core of the node (two at least under
	// a CPU limit); GOMAXPROCS still decides when set.
	if os.Getenv("GOMAXPROCS") == "" {
		goruntime.GOMAXPROCS(1)
	}
	// SIGTERM stops the router and leaves the kernel as it is: a restart
	// or rolling update adopts it without dropping or leaking a packet.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(logr.NewContext(ctx, log), o, log); err != nil {
		log.Error(err, "node-router stopped")
		os.Exit(1)
	}
}

// newLogger logs JSON lines to stderr, client-go's (klog) included.
func newLogger(verbosity int) logr.Logger {
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-verbosity)}))
	klog.SetLogger(log.WithName("client-go"))
	return log
}

// policyOptions reads the kernel-side flags; pkg/policy checks them. A
// flag that does not parse keeps its default, so that it is reported
// once, beside every other mistake.
func policyOptions(o options) (policy.Options, error) {
	p := policy.DefaultOptions()
	var errs []error
	if t, err := policy.ParseTables(o.tables); err != nil {
		errs = append(errs, err)
	} else {
		p.Tables = t
	}
	if m, err := policy.ParseMark(o.mark); err != nil {
		errs = append(errs, err)
	} else {
		p.Mark = m
	}
	p.Priority, p.MarkPriority, p.Protocol = o.priority, o.markPriority, o.protocol
	p.ProbePriority, p.ProbeTableBase = o.probePriority, o.probeTableBase
	return p, errors.Join(append(errs, p.Validate())...)
}

func routerConfig(o options) (router.Config, error) {
	c := router.Config{NodeName: o.nodeName, VPCLink: o.vpcLink, Resync: o.resync, AdoptLegacyRoutes: o.adoptLegacy}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	c.Cluster, err = validate.Load(o.layout, validate.Flags{"vpc-cidr": o.vpc, "pod-cidr": o.pod, "service-cidr": o.service, "api-server-address": o.apiServers})
	add(err)
	c.NeverRoute, err = validate.ParsePrefixes("never-route", o.never)
	add(err)
	if o.nodeIP != "" {
		c.NodeIP, err = validate.ParseIPv4(o.nodeIP)
		if err != nil {
			add(fmt.Errorf("--node-ip (or $NODE_IP): %q %w", o.nodeIP, err))
		}
	}
	if c.NodeName == "" {
		add(errors.New("--node-name (or $NODE_NAME from the downward API) is required"))
	}
	add(o.damping.Validate())
	return c, errors.Join(errs...)
}

func run(ctx context.Context, o options, log logr.Logger) error {
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
	marks := &policy.ValidMarks{Kernel: kernel, Firewall: fw}
	if o.cleanup {
		// The record of src_valid_mark lives in our nftables table: read
		// it before the table goes.
		if err := errors.Join(marks.Restore(), kernel.Cleanup(), fw.Cleanup()); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		log.Info("removed every rule, route and nftables table of ours, and turned src_valid_mark off where we had turned it on")
		return nil
	}
	cfg, err := routerConfig(o)
	if err != nil {
		return err
	}
	if o.podLinks != "" {
		log.Info("--pod-interfaces is deprecated and ignored: inbound connections are told by address, not by link name")
	}

	restCfg, err := kube.LoadConfig(o.kubeconfig, "staticroute-node-router")
	if err != nil {
		return err
	}
	if u, err := url.Parse(restCfg.Host); err == nil {
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.Is4() {
			cfg.Cluster.APIServers = append(cfg.Cluster.APIServers, ip)
		}
	}
	kc, err := kube.NewClient(restCfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := router.NewMetrics(reg)
	if err != nil {
		return err
	}

	poked := make(chan struct{}, 1)
	poke := func() {
		select {
		case poked <- struct{}{}:
		default: // a reconcile is already pending
		}
	}
	// Changes from the API server and from health checks start the clock
	// of event → kernel; kernel events only poke.
	var clock router.EventClock
	changed := func() {
		clock.Mark(time.Now())
		poke()
	}
	caches, informers, err := watch(kc, cfg, log.WithName("watch"), changed)
	if err != nil {
		return err
	}
	// Node states are written in the background: a reconcile never waits
	// for the API server.
	writer := router.NewLatestWriter(kc, log.WithName("report"))
	events := kube.NewEvents(kc, "staticroute-node-router", "staticroute-node-router-"+cfg.NodeName, log.WithName("events"))
	// Health checks run in the node and need no API server: a gateway
	// going down pokes a reconcile, which switches its groups.
	healthMetrics, err := health.NewMetrics(reg)
	if err != nil {
		return err
	}
	monitor := &health.Monitor{Mark: popts.ProbeMark, Changed: changed, Log: log.WithName("health"), Metrics: healthMetrics, Damping: o.damping}
	r := &router.Reconciler{
		Cache: caches, Kernel: kernel, Datapath: &policy.Datapath{Routes: kernel, Firewall: fw, Marks: marks}, Config: cfg, Metrics: metrics,
		Reporter: &router.Reporter{Writer: writer, Events: events}, Health: monitor,
		Wake: func(after time.Duration) { time.AfterFunc(after, poke) }, Clock: &clock,
	}

	var synced atomic.Bool
	// The node's VPC address, where the kubelet's probes and an in-cluster
	// scraper reach a hostNetwork pod; a port alone is served there and on
	// loopback, never on the node's public address.
	var vpcAddr netip.Addr
	if n, err := kernel.ReadNode(r.VPCHint()); err == nil {
		vpcAddr = n.VPCAddr
	} else {
		log.Error(err, "no VPC address yet: metrics and probes are served on loopback only")
	}
	if err := serve(ctx, log, o.metricsAddr, vpcAddr, metricsHandler(reg)); err != nil {
		return fmt.Errorf("--metrics-bind-address: %w", err)
	}
	var heartbeat router.Heartbeat
	if err := serve(ctx, log, o.probeAddr, vpcAddr, probesHandler(&synced, &heartbeat, router.Wedged(cfg.Resync))); err != nil {
		return fmt.Errorf("--health-probe-bind-address: %w", err)
	}
	if err := serve(ctx, log, o.pprofAddr, vpcAddr, httpserve.Pprof()); err != nil {
		return fmt.Errorf("--pprof-bind-address: %w", err)
	}
	go events.Run(ctx)
	go writer.Run(ctx)
	hasSynced := make([]cache.InformerSynced, 0, len(informers))
	for _, inf := range informers {
		go inf.Run(ctx)
		hasSynced = append(hasSynced, inf.HasSynced)
	}
	// Any link change, or a route change in our tables, may have taken
	// routes of ours away: compare with the kernel at the next apply.
	go watchKernel(ctx, log, kernel.Ours, func(table int) {
		if router.Invalidates(table, popts) {
			kernel.Invalidate()
		}
		poke()
	})
	// Our nftables table edited by another program (not only deleted):
	// rewrite it at once.
	go watchFirewall(ctx, log, popts.NFTable, func() {
		fw.Invalidate()
		poke()
	})
	log.Info("starting", "node", cfg.NodeName, "tables", popts.Tables, "mark", fmt.Sprintf("%#x", popts.Mark))
	if !cache.WaitForCacheSync(ctx.Done(), hasSynced...) {
		return nil // stopped before the first list
	}
	if err := checkLayout(r, kernel, log); err != nil {
		return err
	}
	synced.Store(true)
	// The first lists are no change to time: the first reconcile takes up
	// the whole state, whenever the lists ended.
	clock.Take()
	heartbeat.Beat(time.Now())
	router.Loop(ctx, poked, cfg.Resync, func(ctx context.Context) error {
		err := r.Reconcile(ctx)
		heartbeat.Beat(time.Now())
		return err
	})
	return nil
}

// checkLayout resolves the layout once the caches hold the cluster: what
// it leaves out must be discovered now, or the router stops here with an
// error naming the setting.
func checkLayout(r *router.Reconciler, kernel *policy.Kernel, log logr.Logger) error {
	facts, err := kernel.ReadNode(r.VPCHint())
	if err != nil {
		return err
	}
	cluster, err := r.Layout(facts)
	if err != nil {
		return err
	}
	log.Info("layout", "vpc", cluster.VPC, "pod", cluster.Pod, "service", cluster.Service, "vpcLink", facts.VPCLink)
	return nil
}

// watchFirewall turns another program's edits of our nftables table into
// a rewrite.
func watchFirewall(ctx context.Context, log logr.Logger, table string, changed func()) {
	if err := policy.WatchFirewall(ctx, netns.None(), table, changed); err != nil {
		log.Error(err, "no nftables events: another program's edit of our table (not its deletion) is repaired only at our next change")
	}
}

// watchKernel turns route, rule and link changes that are not our own
// writes into reconciles, so that drift is repaired at once, and tells the
// kernel applier when routes of our tables (or links: policy.Lost) changed
// behind its back.
func watchKernel(ctx context.Context, log logr.Logger, ours func(port uint32) bool, changed func(table int)) {
	if err := policy.WatchKernel(ctx, netns.None(), ours, changed); err != nil {
		log.Error(err, "no route and link events: drift waits for the resync")
	}
}
