package main

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/tools/cache"

	"github.com/staticroute/staticroute/internal/health"
	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/internal/router"
	httpserve "github.com/staticroute/staticroute/internal/serve"
	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/policy"
)

// agent is a running router's parts, wired: the reconciler, what feeds
// it (informers, health checks, kernel and nftables events) and what it
// feeds (the node state's writer, Events, metrics, probes).
type agent struct {
	log    logr.Logger
	o      options
	popts  policy.Options
	cfg    router.Config
	kernel *datapath.Kernel
	fw     *datapath.Firewall
	r      *router.Reconciler
	reg    *prometheus.Registry

	informers []*kube.Informer
	writer    *router.LatestWriter
	events    *kube.Events
	// Changes from the API server and from health checks start the clock
	// of event → kernel (changed); kernel events only poke.
	clock     router.EventClock
	poked     chan struct{}
	synced    atomic.Bool
	heartbeat router.Heartbeat
}

// poke asks for a reconcile.
func (a *agent) poke() {
	select {
	case a.poked <- struct{}{}:
	default: // a reconcile is already pending
	}
}

func (a *agent) changed() {
	a.clock.Mark(time.Now())
	a.poke()
}

func newAgent(o options, cfg router.Config, popts policy.Options, kernel *datapath.Kernel, fw *datapath.Firewall, marks *datapath.ValidMarks, log logr.Logger) (*agent, error) {
	a := &agent{log: log, o: o, popts: popts, cfg: cfg, kernel: kernel, fw: fw, poked: make(chan struct{}, 1), reg: prometheus.NewRegistry()}
	restCfg, err := kube.LoadConfig(o.kubeconfig, "staticroute-node-router")
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(restCfg.Host); err == nil {
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.Is4() {
			a.cfg.Cluster.APIServers = append(a.cfg.Cluster.APIServers, ip)
		}
	}
	kc, err := kube.NewClient(restCfg)
	if err != nil {
		return nil, err
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := router.NewMetrics(a.reg)
	if err != nil {
		return nil, err
	}
	caches, informers, err := watch(kc, a.cfg, log.WithName("watch"), a.changed)
	if err != nil {
		return nil, err
	}
	a.informers = informers
	// Node states are written in the background: a reconcile never waits
	// for the API server.
	a.writer = router.NewLatestWriter(kc, log.WithName("report"))
	a.events = kube.NewEvents(kc, "staticroute-node-router", "staticroute-node-router-"+a.cfg.NodeName, log.WithName("events"))
	// Health checks run in the node and need no API server: a gateway
	// going down pokes a reconcile, which switches its groups.
	healthMetrics, err := health.NewMetrics(a.reg)
	if err != nil {
		return nil, err
	}
	monitor := &health.Monitor{Mark: popts.ProbeMark, Changed: a.changed, Log: log.WithName("health"), Metrics: healthMetrics, Damping: o.damping}
	a.r = &router.Reconciler{
		Cache: caches, Kernel: kernel, Datapath: &datapath.Datapath{Routes: kernel, Firewall: fw, Marks: marks}, Config: a.cfg, Metrics: metrics,
		Reporter: &router.Reporter{Writer: a.writer, Events: a.events}, Health: monitor,
		Wake: func(after time.Duration) { time.AfterFunc(after, a.poke) }, Clock: &a.clock,
	}
	return a, nil
}

// serve serves metrics, probes and pprof where their flags say.
func (a *agent) serve(ctx context.Context) error {
	// The node's VPC address, where the kubelet's probes and an in-cluster
	// scraper reach a hostNetwork pod; a port alone is served there and on
	// loopback, never on the node's public address.
	var vpcAddr netip.Addr
	if n, err := a.kernel.ReadNode(a.r.VPCHint()); err == nil {
		vpcAddr = n.VPCAddr
	} else {
		a.log.Error(err, "no VPC address yet: metrics and probes are served on loopback only")
	}
	if err := serve(ctx, a.log, a.o.metricsAddr, vpcAddr, metricsHandler(a.reg)); err != nil {
		return fmt.Errorf("--metrics-bind-address: %w", err)
	}
	if err := serve(ctx, a.log, a.o.probeAddr, vpcAddr, probesHandler(&a.synced, &a.heartbeat, router.Wedged(a.cfg.Resync))); err != nil {
		return fmt.Errorf("--health-probe-bind-address: %w", err)
	}
	if err := serve(ctx, a.log, a.o.pprofAddr, vpcAddr, httpserve.Pprof()); err != nil {
		return fmt.Errorf("--pprof-bind-address: %w", err)
	}
	return nil
}

// run starts the agent's parts and reconciles until ctx ends.
func (a *agent) run(ctx context.Context) error {
	if err := a.serve(ctx); err != nil {
		return err
	}
	go a.events.Run(ctx)
	go a.writer.Run(ctx)
	hasSynced := make([]cache.InformerSynced, 0, len(a.informers))
	for _, inf := range a.informers {
		go inf.Run(ctx)
		hasSynced = append(hasSynced, inf.HasSynced)
	}
	// Any link change, or a route change in our tables, may have taken
	// routes of ours away: compare with the kernel at the next apply.
	go watchKernel(ctx, a.log, a.kernel.Ours, func(table int) {
		if router.Invalidates(table, a.popts) {
			a.kernel.Invalidate()
		}
		a.poke()
	})
	// Our nftables table edited by another program (not only deleted):
	// rewrite it at once.
	go watchFirewall(ctx, a.log, a.popts.NFTable, func() {
		a.fw.Invalidate()
		a.poke()
	})
	a.log.Info("starting", "node", a.cfg.NodeName, "tables", a.popts.Tables, "mark", fmt.Sprintf("%#x", a.popts.Mark))
	if !cache.WaitForCacheSync(ctx.Done(), hasSynced...) {
		return nil // stopped before the first list
	}
	if err := checkLayout(a.r, a.kernel, a.log); err != nil {
		return err
	}
	a.synced.Store(true)
	// The first lists are no change to time: the first reconcile takes up
	// the whole state, whenever the lists ended.
	a.clock.Take()
	a.heartbeat.Beat(time.Now())
	router.Loop(ctx, a.poked, a.cfg.Resync, func(ctx context.Context) error {
		err := a.r.Reconcile(ctx)
		a.heartbeat.Beat(time.Now())
		return err
	})
	return nil
}
