package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// BenchmarkFailoverConvergence measures, at 5, 10 and 20 nodes, the time
// from `kubectl apply` of a new group member (or the delete of the newer
// one, failing back) to the last node's first probe answered via the new
// gateway, over 20 failovers; and, in the same run, the old tutorial's
// delete, wait (2 s here, 30-60 s there), apply. One run is the
// measurement: -benchtime 1x.
//
// NODES (e.g. NODES=20,40; `make bench-scale NODES=…`) picks the sizes.
// Each size also reports the API writes per failover: node states, Events
// and the routes' own (the summarizer's status writes), from the API
// server's request counter; and the CPU every process used over the
// failovers.
//
// Experiments: OWN_CORE=1 runs node 1's router at real-time priority and
// reports its event → kernel alone; CPU_GROUPS=1 puts the control plane
// and the routers in two CPU cgroups of equal weight; PROFILE_DIR=dir
// saves a 60 s CPU profile and a 100 s execution trace of node 1's
// router (with ROUTER_FLAGS=--pprof-bind-address=127.0.0.1:9404);
// ROUTER_ENV sets the routers' environment (e.g. GOMAXPROCS=2);
// FAILOVERS=n makes n failovers instead of 20 (a p99 of 20 is their
// largest).
func BenchmarkFailoverConvergence(b *testing.B) {
	failovers := 20
	if s := os.Getenv("FAILOVERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			b.Fatalf("FAILOVERS=%q: give a number of failovers, 2 or more", s)
		}
		failovers = n
	}
	sizes := []int{5, 10, 20}
	if s := os.Getenv("NODES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > netlab.MaxLargeNodes {
				b.Fatalf("NODES=%s: give sizes from 1 to %d, comma-separated", s, netlab.MaxLargeNodes)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			c := startCluster(b, n)
			w := c.w
			control := map[string]int{"kube-apiserver": childPid(b, "kube-apiserver"), "etcd": childPid(b, "etcd"), "webhook": c.webhook.Pid()}
			if os.Getenv("OWN_CORE") != "" {
				// Node 1's router as on a node of its own, whose cores
				// nothing else wants: real-time priority, so that it runs
				// as soon as it is woken, whatever hundreds of other
				// routers, the API server and the probers want of these
				// two cores. Its event → kernel is then its own work.
				if out, err := exec.Command("chrt", "--all-tasks", "--fifo", "--pid", "1", strconv.Itoa(c.routers[0].Pid())).CombinedOutput(); err != nil {
					b.Fatalf("OWN_CORE: chrt: %v: %s", err, out)
				}
			}
			if os.Getenv("CPU_GROUPS") != "" {
				var nodes []int
				for _, r := range c.routers {
					nodes = append(nodes, r.Pid())
				}
				cpuGroups(b, map[string][]int{"control-plane": slices.Collect(maps.Values(control)), "nodes": nodes})
				b.Log("CPU_GROUPS: the control plane and the routers in two CPU cgroups of equal weight")
			}
			apply := func(y []byte) { c.cp.MustKubectl(b, y, "apply", "-f", "-") }
			primary := routeYAML("primary", "", w.GwAVPC, netlab.EchoAddr)
			secondary := routeYAML("secondary", "primary", w.GwBVPC, netlab.EchoAddr)
			apply(primary)
			c.expect(b, all(w.GwAPublic))
			var times, kubectl []time.Duration
			var slow []string             // failovers over 500 ms, logged last
			var everyNode []time.Duration // each node's switch, every failover
			leakedTotal, lostTotal := 0, 0
			time.Sleep(2 * time.Second) // the first route's reports and Events settle
			idle(b, c, 10*time.Second)
			writesBefore := apiWrites(b, c)
			cpuBefore, userBefore, sysBefore := routersCPU(b, c)
			start := time.Now()
			controlBefore := cpuOf(b, control)
			if dir := os.Getenv("PROFILE_DIR"); dir != "" {
				// Where a router's time goes over the failovers: run with
				// ROUTER_FLAGS=--pprof-bind-address=127.0.0.1:9404.
				// And an execution trace over most of the 20 (regions
				// "reconcile" and "kernel apply"): what ran while a switch
				// waited. Both end before the failovers do.
				routerProfile(b, c.w.Nodes[0], "127.0.0.1:9404", "profile", filepath.Join(dir, fmt.Sprintf("failover-router-%d-cpu.pprof", n)), 60*time.Second)
				routerProfile(b, c.w.Nodes[0], "127.0.0.1:9404", "trace", filepath.Join(dir, fmt.Sprintf("failover-router-%d.trace", n)), 100*time.Second)
			}
			for i := range failovers {
				via, f := w.GwBPublic, func() { apply(secondary) }
				if i%2 == 1 {
					via, f = w.GwAPublic, func() { c.cp.MustKubectl(b, nil, "delete", "staticroute", "secondary") }
				}
				r := c.probe(b, via, f)
				times = append(times, r.converged)
				everyNode = append(everyNode, r.each...)
				kubectl = append(kubectl, r.applied)
				if r.converged > 500*time.Millisecond && r.slowest >= 0 {
					// What the last node's router was doing meanwhile, in
					// a file: benchmark logs are cut short.
					path := filepath.Join(os.TempDir(), fmt.Sprintf("staticroute-slow-failover-%d-%s.log", i, c.names[r.slowest]))
					if err := os.WriteFile(path, []byte(c.routers[r.slowest].Output()), 0o644); err != nil {
						b.Log(err)
					}
					slow = append(slow, fmt.Sprintf("failover %d, begun %s, took %v (kubectl %v); the last node was %s; its router's log: %s", i, r.started.UTC().Format("15:04:05.000"), r.converged, r.applied, c.names[r.slowest], path))
				}
				leakedTotal += r.leaked
				lostTotal += r.lost
				time.Sleep(1100 * time.Millisecond) // members are ordered by creationTimestamp, in seconds
			}
			cpuAfter, user, sys := routersCPU(b, c)
			cpu, elapsed := cpuAfter-cpuBefore, time.Since(start)
			user, sys = user-userBefore, sys-sysBefore
			controlCPU := cpuOf(b, control)
			time.Sleep(2 * time.Second) // the last failover's reports and Events
			writes := apiWrites(b, c)
			per := func(r string) float64 { return (writes[r] - writesBefore[r]) / float64(failovers) }
			b.Logf("API writes per failover, %d nodes: node states %.1f, Events %.1f, StaticRoutes (kubectl and status) %.1f", n, per("staticroutenodestates"), per("events"), per("staticroutes"))
			b.Logf("watches the API server closed as too slow over the %d failovers: %v; node-state events to the summarizer's watch: %s", failovers, terminated(writesBefore, writes), dispatched(writesBefore, writes))
			b.ReportMetric(per("staticroutenodestates")+per("events"), "node-writes/failover")
			b.Logf("failovers in order (ms): %v", millis(times))
			b.Logf("kubectl's own time in each (ms): %v", millis(kubectl))
			b.Logf("CPU over the %d failovers (%.0f s): routers %.2f s (%.1f ms per router and failover; in clock ticks %.2f s, %.0f%% of them in the kernel), %s", failovers, elapsed.Seconds(), cpu.Seconds(),
				float64(cpu.Microseconds())/1000/float64(failovers)/float64(n), (user + sys).Seconds(), 100*sys.Seconds()/(user+sys).Seconds(), perProcess(controlBefore, controlCPU))
			slices.Sort(times)
			p := func(q float64) float64 { return quantileMs(times, q) }
			b.Logf("ours, %d nodes, %d failovers, apply → the last node switched: p50 %.0f ms, p99 %.0f ms, max %.0f ms; leaked %d, lost %d", n, failovers, p(.5), p(.99), p(1), leakedTotal, lostTotal)
			e50, e99, emax := quantiles(everyNode)
			b.Logf("apply → each node (and the pod) switched, %d switches: p50 %s, p99 %s, max %s", len(everyNode), e50.Round(time.Millisecond), e99.Round(time.Millisecond), emax.Round(time.Millisecond))
			b.ReportMetric(float64(e50.Milliseconds()), "each-p50-ms")
			b.ReportMetric(float64(e99.Milliseconds()), "each-p99-ms")
			// Before the long line below: benchmark logs are cut short. The
			// first switch installs the tables, rules and nftables: not a
			// failover, and left out.
			if parts := switchTimes(c.routers[:1]); os.Getenv("OWN_CORE") != "" && len(parts["sinceEvent"]) > 1 {
				first, firstCPU := parts["sinceEvent"][0], parts["cpu"][0]
				p50, p99, mx := quantiles(parts["sinceEvent"][1:])
				c50, c99, cmx := quantiles(parts["cpu"][1:])
				b.Logf("node 1's router at real-time priority (OWN_CORE), %d failovers: event → kernel p50 %s, p99 %s, max %s; its CPU time in the reconcile p50 %s, p99 %s, max %s; the install before them %s (CPU %s)",
					len(parts["sinceEvent"])-1, p50, p99, mx, c50, c99, cmx, first, firstCPU)
				b.ReportMetric(float64(p99.Microseconds())/1000, "own-core-event-to-kernel-p99-ms")
			}
			if parts := switchTimes(c.routers); len(parts["sinceEvent"]) > 0 {
				line := fmt.Sprintf("event → kernel in each router (its own log, every switch of the run): %d switches", len(parts["sinceEvent"]))
				for _, f := range []struct{ key, what string }{
					{"sinceEvent", "in all"}, {"queued", "queued before the reconcile"}, {"readNode", "reading the node"},
					{"compute", "computing"}, {"toSwitch", "apply to the switch"}, {"cpu", "the router's CPU time in the reconcile"},
				} {
					p50, p99, mx := quantiles(parts[f.key])
					line += fmt.Sprintf("; %s p50 %s, p99 %s, max %s", f.what, p50, p99, mx)
				}
				b.Log(line)
				_, e99, _ := quantiles(parts["sinceEvent"])
				b.ReportMetric(float64(e99.Microseconds())/1000, "event-to-kernel-p99-ms")
				_, c99, _ := quantiles(parts["cpu"])
				b.ReportMetric(float64(c99.Microseconds())/1000, "reconcile-cpu-p99-ms")
			}
			if len(slow) > 0 {
				b.Logf("%d failovers over 500 ms:\n%s", len(slow), strings.Join(slow, "\n"))
			}
			b.ReportMetric(p(.5), "p50-ms")
			b.ReportMetric(p(.99), "p99-ms")
			b.ReportMetric(float64(leakedTotal), "leaked")

			c.reset(b)
			oldLeaked := 0
			var oldTimes []time.Duration
			for i := range 3 {
				apply(primary)
				c.expect(b, all(w.GwAPublic))
				r := c.probe(b, w.GwBPublic, func() {
					c.cp.MustKubectl(b, nil, "delete", "staticroute", "primary")
					time.Sleep(2 * time.Second)
					apply(routeYAML("secondary", "", w.GwBVPC, netlab.EchoAddr))
				})
				oldLeaked += r.leaked
				oldTimes = append(oldTimes, r.converged)
				c.reset(b)
				_ = i
			}
			b.Logf("old flow, %d nodes, 3 failovers: delete → last node via B %v; leaked %d (%.0f per failover)", n, oldTimes, oldLeaked, float64(oldLeaked)/3)
			b.ReportMetric(float64(oldLeaked)/3, "old-leaked/failover")
		})
	}
}

// switchTimes reads the timings of every switch from the routers' logs,
// by field: sinceEvent (the change a reconcile took up → the kernel's
// switch) and its parts queued, readNode, compute and toSwitch.
func switchTimes(routers []*framework.Process) map[string][]time.Duration {
	field := func(line, name string) (time.Duration, bool) {
		_, rest, ok := strings.Cut(line, `"`+name+`":"`)
		if !ok {
			return 0, false
		}
		v, _, _ := strings.Cut(rest, `"`)
		d, err := time.ParseDuration(v)
		return d, err == nil
	}
	out := map[string][]time.Duration{}
	for _, r := range routers {
		for _, line := range strings.Split(r.Output(), "\n") {
			if d, ok := field(line, "sinceEvent"); !ok || d == 0 {
				continue
			}
			for _, k := range []string{"sinceEvent", "queued", "readNode", "compute", "toSwitch", "cpu"} {
				d, _ := field(line, k)
				out[k] = append(out[k], d)
			}
		}
	}
	return out
}

// routersCPU is the CPU time all of c's routers have used so far (see
// processCPU) and, in clock ticks (see processTimes), in user space and in
// the kernel, read in one pass.
func routersCPU(b *testing.B, c *cluster) (total, user, sys time.Duration) {
	for _, r := range c.routers {
		u, s := processTimes(b, r.Pid())
		total, user, sys = total+processCPU(b, r.Pid()), user+u, sys+s
	}
	return total, user, sys
}

// cpuOf reads the CPU time each named process has used so far, and this
// test process's own (the probers, the echo and the world's forwarding it
// pays for).
func cpuOf(b *testing.B, pids map[string]int) map[string]time.Duration {
	out := map[string]time.Duration{"the benchmark": processCPU(b, os.Getpid())}
	for name, pid := range pids {
		out[name] = processCPU(b, pid)
	}
	return out
}

// perProcess says what each process of two cpuOf readings used between.
func perProcess(before, after map[string]time.Duration) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		parts = append(parts, fmt.Sprintf("%s %.2f s", name, (after[name]-before[name]).Seconds()))
	}
	return strings.Join(parts, ", ")
}

// idle measures the routers' CPU and memory while nothing changes.
func idle(b *testing.B, c *cluster, d time.Duration) {
	b.Helper()
	before, _, _ := routersCPU(b, c)
	start := time.Now()
	time.Sleep(d)
	after, _, _ := routersCPU(b, c)
	cpu, elapsed := after-before, time.Since(start)
	var rss []float64
	for _, r := range c.routers {
		rss = append(rss, rssMB(b, r.Pid()))
	}
	slices.Sort(rss)
	pct := 100 * cpu.Seconds() / elapsed.Seconds()
	b.Logf("idle, %d routers over %.0f s: %.1f%% of a core in all, %.3f%% per router; RSS per router p50 %.1f MB, max %.1f MB",
		len(c.routers), elapsed.Seconds(), pct, pct/float64(len(c.routers)), rss[len(rss)/2], rss[len(rss)-1])
	b.ReportMetric(pct/float64(len(c.routers)), "idle-%core/router")
}

// dispatched says how long node-state events took between two readings of
// apiWrites, from etcd to the summarizer's watch ("total") and the part
// spent waiting for the watch's sender ("cache_to_watcher"): the mean and
// how many took over 100 ms and over 1 s. Events that wait long here are
// what fills a watch's queue until the API server closes it as too slow.
func dispatched(before, after map[string]float64) string {
	var parts []string
	for _, stage := range []string{"total", "cache_to_watcher"} {
		at := func(k string) float64 { return after["dispatch/"+stage+"/"+k] - before["dispatch/"+stage+"/"+k] }
		n := at("count")
		if n == 0 {
			parts = append(parts, stage+": none")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %.0f events, mean %.1f ms, %.1f%% over 100 ms, %.1f%% over 1 s", stage, n, 1000*at("sum")/n, 100*(n-at("0.1"))/n, 100*(n-at("1"))/n))
	}
	return strings.Join(parts, "; ")
}

// terminated is the watches closed as too slow between two readings of
// apiWrites, by resource (apiserver_terminated_watchers_total).
func terminated(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if r, ok := strings.CutPrefix(k, "terminated/"); ok && v > before[k] {
			out[r] = v - before[k]
		}
	}
	return out
}

// apiWrites counts the writes the API server has taken so far, by
// resource: node states and Events (apiserver_request_total, every
// mutating verb, whatever the answer); and, as "terminated/<resource>",
// the watches it closed because their client read too slowly
// (apiserver_terminated_watchers_total); and, as "dispatch/<stage>/<le>",
// the histogram of how long node-state events took to reach the watchers'
// result queues (apiserver_watch_events_dispatch_duration_seconds: only
// the summarizer watches node states here).
func apiWrites(b *testing.B, c *cluster) map[string]float64 {
	b.Helper()
	raw := c.cp.MustKubectl(b, nil, "get", "--raw", "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	fam := fams["apiserver_request_total"]
	if fam == nil {
		b.Fatal("no apiserver_request_total in the API server's metrics")
	}
	for _, m := range fams["apiserver_terminated_watchers_total"].GetMetric() {
		for _, p := range m.GetLabel() {
			if p.GetName() == "resource" {
				out["terminated/"+p.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range fams["apiserver_watch_events_dispatch_duration_seconds"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["resource"] != "staticroutenodestates" {
			continue
		}
		h := m.GetHistogram()
		out["dispatch/"+l["stage"]+"/count"] += float64(h.GetSampleCount())
		out["dispatch/"+l["stage"]+"/sum"] += h.GetSampleSum()
		for _, bk := range h.GetBucket() {
			out[fmt.Sprintf("dispatch/%s/%g", l["stage"], bk.GetUpperBound())] += float64(bk.GetCumulativeCount())
		}
	}
	for _, m := range fam.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		switch l["verb"] {
		case "POST", "PUT", "PATCH", "APPLY", "CREATE", "UPDATE":
		default:
			continue
		}
		if r := l["resource"]; r == "staticroutenodestates" || r == "events" || r == "staticroutes" {
			out[r] += m.GetCounter().GetValue()
		}
	}
	return out
}

// BenchmarkAutomaticFailover measures, on NODES nodes (default 20), the
// time from a gateway's death (its VPC link down) to the last node's
// first probe answered via the other gateway, with no kubectl and no API
// server involved, over 20 deaths; and in the same run, 20 manual
// failovers by `kubectl apply` of a new member (and its delete). Probers
// at 1,000/s on every node and the pod. PERIOD_MS sets the members'
// periodMilliseconds (default 200), TIMEOUT_MS their timeoutMilliseconds
// (default none: half the period); before the deaths, every router's CPU
// over 10 s with only its two probes to run is the probes' cost.
func BenchmarkAutomaticFailover(b *testing.B) {
	n := 20
	if s := os.Getenv("NODES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > netlab.MaxNodes {
			b.Fatalf("NODES=%s: give one size from 1 to %d", s, netlab.MaxNodes)
		}
		n = v
	}
	period := 200
	if s := os.Getenv("PERIOD_MS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < v1.MinProbePeriodMilliseconds || v > 60000 {
			b.Fatalf("PERIOD_MS=%s: give a probe period from %d to 60000 ms", s, v1.MinProbePeriodMilliseconds)
		}
		period = v
	}
	// TIMEOUT_MS sets timeoutMilliseconds (default: none, half the
	// period), to compare with the whole period side by side.
	timeout := ""
	if s := os.Getenv("TIMEOUT_MS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 10 || v > period {
			b.Fatalf("TIMEOUT_MS=%s: give a probe timeout from 10 to the period (%d) ms", s, period)
		}
		timeout = fmt.Sprintf(", timeoutMilliseconds: %d", v)
	}
	checked := func(name, group, gw string) []byte {
		return append(routeYAML(name, group, gw, netlab.EchoAddr),
			[]byte(fmt.Sprintf("  healthCheck: {target: %q, periodMilliseconds: %d%s}\n", netlab.EchoAddr, period, timeout))...)
	}
	// Flap damping off: 20 deaths a second or two apart would be damped
	// after the first; each is measured here.
	c := startCluster(b, n, "--flap-half-life=0")
	apply := func(y []byte) { c.cp.MustKubectl(b, y, "apply", "-f", "-") }
	apply(checked("primary", "", netlab.GwAVPC))
	time.Sleep(1100 * time.Millisecond)
	apply(checked("secondary", "primary", netlab.GwBVPC))
	c.expect(b, all(netlab.GwBPublic))
	pids := make([]int, len(c.routers))
	for i, r := range c.routers {
		pids[i] = r.Pid()
	}
	time.Sleep(time.Second)
	idle := cpuSince(b, pids...)
	const idleFor = 10 * time.Second
	time.Sleep(idleFor)
	var probing time.Duration
	for _, d := range idle() {
		probing += d
	}
	probeShare := float64(probing) / float64(len(pids)) / float64(idleFor)
	b.Logf("%d nodes, probes every %d ms through 2 gateways: a router's CPU %.3f%% of a core (mean of %d, over %s)", n, period, 100*probeShare, len(pids), idleFor)
	b.ReportMetric(100*probeShare, "router-cpu-pct")
	p := c.w.StartProbers(b, time.Millisecond)
	var auto, back, manual []time.Duration
	for range 20 {
		failed := time.Now()
		c.w.GwB.IP(b, "link", "set", "vpc", "down")
		auto = append(auto, switched(b, p, nil, netlab.GwAPublic, failed))
		repaired := time.Now()
		c.w.GwB.IP(b, "link", "set", "vpc", "up")
		back = append(back, switched(b, p, nil, netlab.GwBPublic, repaired))
		time.Sleep(300 * time.Millisecond)
	}
	for i := range 20 {
		via, f := netlab.GwAPublic, func() { apply(checked("manual", "primary", netlab.GwAVPC)) }
		if i%2 == 1 {
			via, f = netlab.GwBPublic, func() { c.cp.MustKubectl(b, nil, "delete", "staticroute", "manual") }
		}
		started := time.Now()
		f()
		manual = append(manual, switched(b, p, nil, via, started))
		time.Sleep(1100 * time.Millisecond) // members are ordered by creationTimestamp, in seconds
	}
	sent, leaked, lost := p.Result()
	for _, s := range []struct {
		name string
		ds   []time.Duration
	}{{"gateway death → last node on the other gateway (automatic)", auto}, {"gateway back → last node back (automatic)", back}, {"kubectl apply/delete → last node switched (manual)", manual}} {
		p50, p99, mx := quantiles(s.ds)
		b.Logf("%d nodes, %s: p50 %s, p99 %s, max %s", n, s.name, p50.Round(time.Millisecond), p99.Round(time.Millisecond), mx.Round(time.Millisecond))
	}
	b.Logf("%d probes, %d leaked, %d lost", sent, leaked, lost)
	a50, a99, _ := quantiles(auto)
	m50, m99, _ := quantiles(manual)
	b.ReportMetric(float64(a50.Milliseconds()), "auto-p50-ms")
	b.ReportMetric(float64(a99.Milliseconds()), "auto-p99-ms")
	b.ReportMetric(float64(m50.Milliseconds()), "manual-p50-ms")
	b.ReportMetric(float64(m99.Milliseconds()), "manual-p99-ms")
	b.ReportMetric(float64(leaked), "leaked")
}

// routerProfile writes a profile of kind ("profile": CPU, "trace": an
// execution trace) of the router listening on addr inside node's namespace
// over the next d to path, in the background.
// The connection is dialled here, on a thread inside the namespace
// (net/http dials on goroutines of its own, so it is handed the
// connection ready).
func routerProfile(b *testing.B, node *netlab.NS, addr, kind, path string, d time.Duration) {
	var conn net.Conn
	netlab.InNS(b, node, func() (err error) {
		conn, err = net.Dial("tcp", addr)
		return err
	})
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, int(d.Seconds())))
		if err != nil {
			b.Logf("the router's profile: %v", err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(path, body, 0o644)
		}
		if err != nil {
			b.Logf("the router's profile: %v", err)
		}
	}()
}
