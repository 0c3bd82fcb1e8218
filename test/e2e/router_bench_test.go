package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/staticroute/staticroute/test/framework"
)

// BenchmarkRouterWith1000Routes runs the real router in the tutorial's node
// with 1,000 StaticRoutes of 10 destinations each (10,000 prefixes), and
// reports its resident memory once it has applied them and settled, and
// the time from the last create to the kernel holding every prefix.
// One run is the measurement: -benchtime 1x.
func BenchmarkRouterWith1000Routes(b *testing.B) {
	env := startWorldCluster(b, "")
	cp, w := env.cp, env.w
	router := framework.StartRouter(b, env.kubeconfig, w.Node, env.routerArgs...)

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
		n := strings.Count(w.Node.IP(b, "route", "show", "table", "all"), "proto 146 src")
		if n < 10_000 {
			return fmt.Errorf("%d of 10000 prefixes steered", n)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	applied := time.Now()
	time.Sleep(10 * time.Second) // settle: resyncs, the first full check
	rss := rssMB(b, router.Pid())
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
