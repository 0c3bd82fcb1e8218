package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
)

// benchRoute is route i of the benchmark: ten /32s of its own in
// 198.18.0.0/15, in a group of its own.
func benchRoute(prefix string, i int) *v1.StaticRoute {
	dests := make([]string, 10)
	for j := range dests {
		v := i*10 + j
		dests[j] = fmt.Sprintf("198.%d.%d.%d", 18+v>>16, (v>>8)&255, v&255)
	}
	return &v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", prefix, i)},
		Spec:       v1.StaticRouteSpec{Destinations: dests, Gateway: "10.116.0.4"},
	}
}

// skipLabel marks the creates the webhook does not see: the benchmark
// adds an objectSelector on it to the webhook configuration.
const skipLabel = "bench.staticroute.io/skip-webhook"

// BenchmarkAdmissionLatency measures what the webhook adds to a create
// through the real API server: 12,000 creates paced at 200/s with 10,000
// routes (100,000 destinations) existing, every other one skipping the
// webhook, so both kinds meet the same API server, etcd and load.
// One run is the measurement: -benchtime 1x.
func BenchmarkAdmissionLatency(b *testing.B) {
	const existing, measured, rate = 10_000, 12_000, 200
	metricsAddr := freePort(b)
	webhookFlags := []string{"--metrics-bind-address=" + metricsAddr}
	// PROFILE_DIR: an execution trace of the webhook, 5 s in the middle
	// of the measured creates, is saved there (go tool trace).
	profileDir, pprofAddr := os.Getenv("PROFILE_DIR"), ""
	if profileDir != "" {
		pprofAddr = freePort(b)
		webhookFlags = append(webhookFlags, "--pprof-bind-address="+pprofAddr)
	}
	// CALL_SPANS=1: the API server's own timing of each webhook call, from
	// its traces of one create in ten of each kind (they carry a sampled
	// trace context; nothing else is traced). Off by default: tracing
	// costs the API server, and lengthens both kinds' tails.
	var spans *framework.SpanCollector
	var apiServerFlags []framework.Flag
	if os.Getenv("CALL_SPANS") == "1" {
		spans = framework.StartSpanCollector(b, webhookCallSpan)
		apiServerFlags = append(apiServerFlags, spans.TracingFlag(b))
	}
	e := startAdmissionWith(b, apiServerFlags, webhookFlags...)
	cfg := *e.cp.Config
	cfg.QPS, cfg.Burst = 5000, 5000
	c, err := client.New(&cfg, client.Options{Scheme: e.cp.Client(b).Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	parallel(b, existing, 16, func(i int) error { return c.Create(context.Background(), benchRoute("existing", i)) })
	b.Logf("created %d routes in %s", existing, time.Since(start).Round(time.Millisecond))

	e.cp.MustKubectl(b, nil, "patch", "validatingwebhookconfiguration", "staticroute-validating", "--type=json", "-p",
		`[{"op":"add","path":"/webhooks/0/objectSelector","value":{"matchExpressions":[{"key":"`+skipLabel+`","operator":"DoesNotExist"}]}}]`)
	// Wait until a labelled create skips the webhook: a gateway outside
	// the VPC then passes a dry run.
	if err := framework.Eventually(context.Background(), 20*time.Second, func() error {
		return e.cp.Kubectl(context.Background(), []byte(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: probe, labels: {`+skipLabel+`: "true"}}
spec: {destinations: ["203.0.113.99"], gateway: "198.51.100.1"}
`), "create", "--dry-run=server", "-f", "-").Err
	}); err != nil {
		b.Fatal(err)
	}

	if profileDir != "" {
		prefix := filepath.Join(profileDir, strings.ReplaceAll(b.Name(), "/", "_"))
		go saveTrace(b, pprofAddr, prefix+"-webhook", measured/rate/2)
	}
	clientFor := func(int) client.Client { return c }
	if spans != nil {
		traced := cfg
		traced.Wrap(framework.TraceParent)
		tc, err := client.New(&traced, client.Options{Scheme: e.cp.Client(b).Scheme()})
		if err != nil {
			b.Fatal(err)
		}
		clientFor = func(i int) client.Client {
			if i%20 < 2 { // creates alternate between the kinds
				return tc
			}
			return c
		}
	}
	with, without := paced(b, clientFor, existing, measured, rate)
	p := func(d []time.Duration, q float64) float64 {
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.Logf("create latency at %d/s with %d routes existing, %d creates of each kind interleaved (ms):", rate, existing, measured/2)
	b.Logf("  %-12s %8s %8s %8s", "", "p50", "p99", "max")
	b.Logf("  %-12s %8.2f %8.2f %8.2f", "webhook", p(with, .5), p(with, .99), p(with, 1))
	b.Logf("  %-12s %8.2f %8.2f %8.2f", "no webhook", p(without, .5), p(without, .99), p(without, 1))
	h50, h99 := histogramQuantiles(b, metricsAddr, "staticroute_admission_duration_seconds", map[string]string{"operation": "create", "result": "admitted"})
	r50, r99 := histogramQuantiles(b, metricsAddr, "staticroute_admission_request_duration_seconds", nil)
	b.Logf("  %-12s %8.3f %8.3f %8s", "decision", h50, h99, "(bucket upper bounds)")
	b.Logf("  %-12s %8.3f %8.3f %8s", "in process", r50, r99, "(bucket upper bounds: the whole request in the webhook)")
	if spans != nil {
		calls := waitSpans(b, spans, measured/20)
		b.Logf("  %-12s %8.2f %8.2f %8.2f (the API server's span %q, %d calls)", "webhook call", p(calls, .5), p(calls, .99), p(calls, 1), webhookCallSpan, len(calls))
		b.ReportMetric(p(calls, .5), "p50-ms-call")
		b.ReportMetric(p(calls, .99), "p99-ms-call")
	}
	b.ReportMetric(h99, "p99-ms-decision")
	b.ReportMetric(r99, "p99-ms-in-process")
	b.ReportMetric(p(with, .5), "p50-ms-webhook")
	b.ReportMetric(p(with, .99), "p99-ms-webhook")
	b.ReportMetric(p(without, .5), "p50-ms-none")
	b.ReportMetric(p(without, .99), "p99-ms-none")
	b.ReportMetric(p(with, .5)-p(without, .5), "p50-ms-added")
	b.ReportMetric(p(with, .99)-p(without, .99), "p99-ms-added")
}

// webhookCallSpan is the span the API server records around each call of a
// validating webhook: encoding the review, the round trip, decoding the
// answer.
const webhookCallSpan = "Call validating webhook"

// waitSpans waits until the API server has exported n spans of webhook
// calls (it sends them in batches every few seconds) and returns their
// durations, sorted.
func waitSpans(b *testing.B, spans *framework.SpanCollector, n int) []time.Duration {
	b.Helper()
	var got []time.Duration
	if err := framework.Eventually(context.Background(), 30*time.Second, func() error {
		got = append(got, spans.Take(webhookCallSpan)...)
		if len(got) < n {
			return fmt.Errorf("%d of %d webhook call spans received", len(got), n)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// saveTrace saves a 5 s execution trace of the webhook, after seconds,
// its allocation profiles at the start and the end of those 5 s (to
// compare: go tool pprof -base start end), then a 5 s CPU profile.
func saveTrace(b *testing.B, pprofAddr, prefix string, after int) {
	time.Sleep(time.Duration(after) * time.Second)
	save := func(path, name string) {
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/" + name)
		if err != nil {
			b.Logf("%s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(prefix + path)
		if err != nil {
			b.Logf("%s: %v", name, err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			b.Logf("%s: %v", name, err)
		}
	}
	save("-allocs-start.pprof", "allocs")
	save(".trace", "trace?seconds=5")
	save("-allocs-end.pprof", "allocs")
	save("-cpu.pprof", "profile?seconds=5")
}

// paced creates n routes at rate per second, create i through client(i),
// every other one labelled to skip the webhook, and returns both kinds'
// latencies, sorted.
func paced(b *testing.B, client func(i int) client.Client, first, n, rate int) (with, without []time.Duration) {
	b.Helper()
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := benchRoute("measured", first+i)
			if i%2 == 1 {
				r.Labels = map[string]string{skipLabel: "true"}
			}
			t0 := time.Now()
			err := client(i).Create(context.Background(), r)
			lat[i] = time.Since(t0)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("create: %v", firstErr)
	}
	for i, d := range lat {
		if i%2 == 0 {
			with = append(with, d)
		} else {
			without = append(without, d)
		}
	}
	slices.Sort(with)
	slices.Sort(without)
	return with, without
}

func parallel(b *testing.B, n, workers int, f func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

func freePort(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// histogramQuantiles reads histogram name (the series whose labels include
// match) from the webhook's metrics and returns the upper bounds (ms) of
// the buckets holding p50 and p99.
func histogramQuantiles(b *testing.B, addr, name string, match map[string]string) (p50, p99 float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	fam := fams[name]
	if fam == nil {
		b.Fatalf("no %s in the webhook's metrics", name)
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range match {
			matches = matches && labels[k] == v
		}
		if !matches {
			continue
		}
		h := m.GetHistogram()
		total := float64(h.GetSampleCount())
		for _, bk := range h.GetBucket() {
			c := float64(bk.GetCumulativeCount())
			if p50 == 0 && c >= total*0.5 {
				p50 = bk.GetUpperBound() * 1000
			}
			if p99 == 0 && c >= total*0.99 {
				p99 = bk.GetUpperBound() * 1000
			}
		}
	}
	return p50, p99
}
