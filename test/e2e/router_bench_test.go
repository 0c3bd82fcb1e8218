package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// BenchmarkRouterWith1000Routes runs the real router in the tutorial's node
// with 1,000 StaticRoutes of 10 destinations each (10,000 prefixes), and
// reports its resident memory once it has applied them and settled, and
// the time from the last create to the kernel holding every prefix.
// One run is the measurement: -benchtime 1x.
func BenchmarkRouterWith1000Routes(b *testing.B) {
	env := startWorldCluster(b, "")
	cp, w := env.cp, env.w
	// Metrics on, as in the DaemonSet; profiling only when asked for
	// (PROFILE_DIR: heap and allocation profiles are written there).
	args := append(env.routerArgs, "--metrics-bind-address", "127.0.0.1:9402")
	profileDir := os.Getenv("PROFILE_DIR")
	if profileDir != "" {
		args = append(args, "--pprof-bind-address", "127.0.0.1:9404")
	}
	router := framework.StartRouter(b, env.kubeconfig, w.Node, args...)

	var docs []string
	for i := range 1000 {
		dests := make([]string, 10)
		for j := range dests {
			v := i*10 + j
			dests[j] = fmt.Sprintf("198.%d.%d.%d", 18+v>>16, (v>>8)&255, v&255)
		}
		docs = append(docs, string(routeYAML(fmt.Sprintf("r%04d", i), "", "198.51.100.4", dests...)))
	}
	start := time.Now()
	cp.MustKubectl(b, []byte(strings.Join(docs, "---\n")), "apply", "--server-side", "-f", "-")
	created := time.Now()
	if err := framework.Eventually(context.Background(), 40*time.Second, func() error {
		// The standby table is brought up to date after the switch: the
		// first table to hold them all is the active one.
		perTable := map[string]int{}
		for _, l := range strings.Split(w.Node.IP(b, "route", "show", "table", "all"), "\n") {
			if f := strings.Fields(l); strings.Contains(l, "proto 146 src") && slices.Index(f, "table") >= 0 {
				perTable[f[slices.Index(f, "table")+1]]++
			}
		}
		if n := max(perTable["52101"], perTable["52102"]); n < 10_000 {
			return fmt.Errorf("%d of 10000 prefixes steered", n)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	applied := time.Now()
	time.Sleep(10 * time.Second) // settle: resyncs, the first full check
	rss := rssMB(b, router.Pid())
	b.Log(memoryBreakdown(b, router.Pid(), w.Node))
	if profileDir != "" {
		w.Node.Exec(b, "curl", "-sf", "-o", profileDir+"/router-heap.pprof", "http://127.0.0.1:9404/debug/pprof/heap?gc=1")
		w.Node.Exec(b, "curl", "-sf", "-o", profileDir+"/router-allocs.pprof", "http://127.0.0.1:9404/debug/pprof/allocs")
	}
	b.Logf("created 1000 routes in %s; steered on the node %s after the last create; router RSS %.1f MB", created.Sub(start).Round(time.Millisecond), applied.Sub(created).Round(time.Millisecond), rss)
	b.ReportMetric(rss, "rss-MB")
	b.ReportMetric(float64(applied.Sub(created).Milliseconds()), "ms-create-to-steered")
}

func rssMB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// memoryBreakdown says where the router's resident memory is: the kernel's
// view (anonymous vs file pages) and the Go runtime's (heap, stacks, the
// runtime's own structures), from its metrics endpoint.
func memoryBreakdown(b *testing.B, pid int, node *netlab.NS) string {
	var out strings.Builder
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && (f[0] == "Rss:" || f[0] == "Anonymous:" || f[0] == "Pss_File:" || f[0] == "Pss_Anon:") {
				fmt.Fprintf(&out, "%s %s kB; ", f[0], f[1])
			}
		}
	}
	// The binary's resident pages, by mapping (text, read-only data and
	// pclntab, data).
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid)); err == nil {
		var mapping string
		for _, l := range strings.Split(string(raw), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 6 && strings.Contains(f[0], "-"):
				mapping = ""
				if strings.HasSuffix(f[5], "/node-router") {
					mapping = f[1]
				}
			case mapping != "" && len(f) >= 2 && f[0] == "Rss:":
				fmt.Fprintf(&out, "binary %s %s kB; ", mapping, f[1])
			}
		}
	}
	metrics := node.Exec(b, "curl", "-sf", "http://127.0.0.1:9402/metrics")
	for _, l := range strings.Split(metrics, "\n") {
		for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "go_memstats_mspan_inuse_bytes", "go_memstats_other_sys_bytes", "go_memstats_gc_sys_bytes", "go_memstats_buck_hash_sys_bytes", "go_memstats_next_gc_bytes", "go_threads", "go_goroutines"} {
			if f := strings.Fields(l); len(f) == 2 && f[0] == name {
				v, _ := strconv.ParseFloat(f[1], 64)
				if strings.HasSuffix(name, "_bytes") {
					fmt.Fprintf(&out, "%s %.1f MB; ", strings.TrimPrefix(name, "go_memstats_"), v/(1<<20))
				} else {
					fmt.Fprintf(&out, "%s %.0f; ", name, v)
				}
			}
		}
	}
	return out.String()
}
