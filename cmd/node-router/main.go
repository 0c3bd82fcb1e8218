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
	"os"
	"os/signal"
	goruntime "runtime"
	"runtime/debug"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netns"
	"k8s.io/klog/v2"

	"github.com/staticroute/staticroute/internal/router"
	"github.com/staticroute/staticroute/internal/version"
	"github.com/staticroute/staticroute/pkg/datapath"
)

func main() {
	o, showVersion, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		os.Exit(2) // the flag package printed why
	}
	if showVersion {
		fmt.Println(version.String("node-router"))
		return
	}
	log := newLogger(o.verbosity)
	tuneRuntime(o)
	// SIGTERM stops the router and leaves the kernel as it is: a restart
	// or rolling update adopts it without dropping or leaking a packet.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(logr.NewContext(ctx, log), o, log); err != nil {
		log.Error(err, "node-router stopped")
		os.Exit(1)
	}
}

// tuneRuntime sizes the Go runtime for a node agent.
func tuneRuntime(o options) {
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
}

// newLogger logs JSON lines to stderr, client-go's (klog) included.
func newLogger(verbosity int) logr.Logger {
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-verbosity)}))
	klog.SetLogger(log.WithName("client-go"))
	return log
}

func run(ctx context.Context, o options, log logr.Logger) error {
	popts, err := policyOptions(o)
	if err != nil {
		return err
	}
	kernel, err := datapath.NewKernel(netns.None(), popts)
	if err != nil {
		return err
	}
	defer kernel.Close()
	nft, err := datapath.NewNFTConn(-1)
	if err != nil {
		return err
	}
	fw := &datapath.Firewall{Conn: nft, Opts: popts}
	marks := &datapath.ValidMarks{Kernel: kernel, Firewall: fw}
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
	a, err := newAgent(o, cfg, popts, kernel, fw, marks, log)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

// checkLayout resolves the layout once the caches hold the cluster: what
// it leaves out must be discovered now, or the router stops here with an
// error naming the setting.
func checkLayout(r *router.Reconciler, kernel *datapath.Kernel, log logr.Logger) error {
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
	if err := datapath.WatchFirewall(ctx, netns.None(), table, changed); err != nil {
		log.Error(err, "no nftables events: another program's edit of our table (not its deletion) is repaired only at our next change")
	}
}

// watchKernel turns route, rule and link changes that are not our own
// writes into reconciles, so that drift is repaired at once, and tells the
// kernel applier when routes of our tables (or links: datapath.Lost) changed
// behind its back.
func watchKernel(ctx context.Context, log logr.Logger, ours func(port uint32) bool, changed func(table int)) {
	if err := datapath.WatchKernel(ctx, netns.None(), ours, changed); err != nil {
		log.Error(err, "no route and link events: drift waits for the resync")
	}
}
