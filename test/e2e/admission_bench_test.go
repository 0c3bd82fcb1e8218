package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
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
	"github.com/staticroute/staticroute/certs"
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

// skipLabel marks the creates cmd/webhook does not see: the benchmark adds
// an objectSelector on it to the webhook configuration. Its value says
// which baseline the create is: "none" goes to no webhook, "null" to
// test/nullwebhook only.
const skipLabel = "bench.staticroute.io/skip-webhook"

// The three kinds of measured creates, in the order they take turns.
var benchKinds = []struct{ name, label string }{
	{"webhook", ""},          // cmd/webhook
	{"no webhook", "none"},   // no webhook at all
	{"null webhook", "null"}, // test/nullwebhook, which only admits
}

// BenchmarkAdmissionLatency measures what the webhook adds to a create
// through the real API server: 18,000 creates paced at 200/s with 10,000
// routes (100,000 destinations) existing, taking turns between three
// kinds, so that all meet the same API server, etcd and load: creates that
// cmd/webhook checks, creates that no webhook sees, and creates that only
// a webhook doing nothing but admit (test/nullwebhook) sees, the baseline
// of what any webhook adds on this machine.
// One run is the measurement: -benchtime 1x.
func BenchmarkAdmissionLatency(b *testing.B) {
	const existing, measured, rate = 10_000, 18_000, 200
	metricsAddr := freePort(b)
	webhookFlags := append([]string{"--metrics-bind-address=" + metricsAddr}, strings.Fields(os.Getenv("WEBHOOK_FLAGS"))...)
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
	// costs the API server.
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
	null := startNullWebhook(b, e)
	// Wait until each kind meets its webhook: a gateway outside the VPC
	// passes a dry run that skips cmd/webhook, and test/nullwebhook
	// refuses the name it refuses.
	probe := func(name, label string) framework.KubectlResult {
		return e.cp.Kubectl(context.Background(), []byte(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: `+name+`, labels: {`+skipLabel+`: "`+label+`"}}
spec: {destinations: ["203.0.113.99"], gateway: "198.51.100.1"}
`), "create", "--dry-run=server", "-f", "-")
	}
	if err := framework.Eventually(context.Background(), 20*time.Second, func() error {
		if r := probe("probe", "none"); r.Err != nil {
			return fmt.Errorf("a create labelled to skip every webhook: %v: %s", r.Err, r.Stderr)
		}
		if r := probe("probe", "null"); r.Err != nil {
			return fmt.Errorf("a create for the null webhook: %v: %s", r.Err, r.Stderr)
		}
		if r := probe("refuse-me", "null"); r.Err == nil || !strings.Contains(r.Stderr, "refused by nullwebhook") {
			return fmt.Errorf("the null webhook is not asked yet: %v: %s", r.Err, r.Stderr)
		}
		return nil
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
			if i%(10*len(benchKinds)) < len(benchKinds) { // one of each kind in ten
				return tc
			}
			return c
		}
	}
	used := cpuSince(b, e.webhook.Pid(), null.Pid(), childPid(b, "kube-apiserver"))
	lat := paced(b, clientFor, existing, measured, rate)
	// The webhook's is all its work: the informer's events of every create
	// (of all three kinds), the summarizer, the admission itself.
	cpu := used()
	p, perKind := quantileMs, measured/len(benchKinds)
	b.Logf("create latency at %d/s with %d routes existing, %d creates of each kind taking turns (ms):", rate, existing, perKind)
	b.Logf("  %-13s %8s %8s %8s %14s", "", "p50", "p99", "max", "added p50/p99")
	for k, kind := range benchKinds {
		b.Logf("  %-13s %8.2f %8.2f %8.2f %6.2f / %5.2f", kind.name, p(lat[k], .5), p(lat[k], .99), p(lat[k], 1),
			p(lat[k], .5)-p(lat[1], .5), p(lat[k], .99)-p(lat[1], .99))
	}
	h50, h99 := histogramQuantiles(b, metricsAddr, "staticroute_admission_duration_seconds", map[string]string{"operation": "create", "result": "admitted"})
	r50, r99 := histogramQuantiles(b, metricsAddr, "staticroute_admission_request_duration_seconds", nil)
	b.Logf("  inside cmd/webhook (bucket upper bounds, ms): decision p50 %.3f, p99 %.3f; whole request p50 %.3f, p99 %.3f", h50, h99, r50, r99)
	perCheck := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(perKind) }
	apiPerCreate := float64(cpu[2].Microseconds()) / measured
	// One line: benchmark logs are cut after a few lines.
	b.Logf("CPU over the paced creates: cmd/webhook %v (%.0f µs per create it checks), null webhook %v (%.0f µs), kube-apiserver %v (%.0f µs per create)",
		cpu[0], perCheck(cpu[0]), cpu[1], perCheck(cpu[1]), cpu[2], apiPerCreate)
	b.ReportMetric(perCheck(cpu[0]), "cpu-µs/check")
	b.ReportMetric(apiPerCreate, "apiserver-cpu-µs/create")
	if spans != nil {
		// One create in ten of each kind is traced; two kinds call a webhook.
		calls := waitSpans(b, spans, 2*perKind/10)
		for _, w := range []string{ourWebhook, nullWebhook} {
			d := calls[w]
			if len(d) == 0 {
				b.Fatalf("no span of a call to %s", w)
			}
			b.Logf("  %-13s %8.2f %8.2f %8.2f (the API server's span %q of %d calls to %s)", "call", p(d, .5), p(d, .99), p(d, 1), webhookCallSpan, len(d), w)
		}
		b.ReportMetric(p(calls[ourWebhook], .5), "p50-ms-call")
		b.ReportMetric(p(calls[ourWebhook], .99), "p99-ms-call")
		b.ReportMetric(p(calls[nullWebhook], .99), "p99-ms-call-null")
	}
	b.ReportMetric(h99, "p99-ms-decision")
	b.ReportMetric(r99, "p99-ms-in-process")
	b.ReportMetric(p(lat[0], .5), "p50-ms-webhook")
	b.ReportMetric(p(lat[0], .99), "p99-ms-webhook")
	b.ReportMetric(p(lat[1], .5), "p50-ms-none")
	b.ReportMetric(p(lat[1], .99), "p99-ms-none")
	b.ReportMetric(p(lat[0], .5)-p(lat[1], .5), "p50-ms-added")
	b.ReportMetric(p(lat[0], .99)-p(lat[1], .99), "p99-ms-added")
	b.ReportMetric(p(lat[2], .99)-p(lat[1], .99), "p99-ms-added-null")
}

// The webhooks' names in the API server's spans.
const (
	ourWebhook  = "vstaticroute.networking.digitalocean.com"
	nullWebhook = "null.bench.staticroute.io"
)

// startNullWebhook builds and runs test/nullwebhook with the webhook's
// certificate and registers it for the creates labelled "null".
func startNullWebhook(b *testing.B, e *admissionEnv) *framework.Process {
	b.Helper()
	p, addr := runNullWebhook(b, e.webhook.CertDir)
	ca, err := os.ReadFile(filepath.Join(e.webhook.CertDir, certs.CAFile))
	if err != nil {
		b.Fatal(err)
	}
	e.cp.MustKubectl(b, []byte(fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: bench-null}
webhooks:
- name: %s
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig: {url: "https://%s/", caBundle: %s}
  objectSelector: {matchLabels: {%q: "null"}}
  rules:
  - {apiGroups: [networking.digitalocean.com], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [staticroutes], scope: Cluster}
`, nullWebhook, addr, base64.StdEncoding.EncodeToString(ca), skipLabel)), "apply", "-f", "-")
	return p
}

// runNullWebhook builds and starts test/nullwebhook with the webhook's
// certificate and args, and returns where it serves.
func runNullWebhook(t testing.TB, certDir string, args ...string) (*framework.Process, string) {
	t.Helper()
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "nullwebhook")
	build := exec.Command("go", "build", "-o", bin, "./test/nullwebhook")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building test/nullwebhook: %v\n%s", err, out)
	}
	addr := freePort(t)
	return framework.Start(t, bin, append([]string{"--cert-dir", certDir, "--addr", addr}, args...)...), addr
}

// webhookCallSpan is the span the API server records around each call of a
// validating webhook: encoding the review, the round trip, decoding the
// answer.
const webhookCallSpan = "Call validating webhook"

// waitSpans waits until the API server has exported n spans of webhook
// calls (it sends them in batches every few seconds) and returns their
// durations by webhook, sorted.
func waitSpans(b *testing.B, spans *framework.SpanCollector, n int) map[string][]time.Duration {
	b.Helper()
	got, total := map[string][]time.Duration{}, 0
	if err := framework.Eventually(context.Background(), 30*time.Second, func() error {
		for _, s := range spans.Take(webhookCallSpan) {
			got[s.Attrs["webhook"]] = append(got[s.Attrs["webhook"]], s.Duration)
			total++
		}
		if total < n {
			return fmt.Errorf("%d of %d webhook call spans received", total, n)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, d := range got {
		slices.Sort(d)
	}
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

// paced creates n routes at rate per second, create i through client(i)
// and of kind benchKinds[i%len(benchKinds)], and returns each kind's
// latencies, sorted.
func paced(b *testing.B, client func(i int) client.Client, first, n, rate int) [][]time.Duration {
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
			if l := benchKinds[i%len(benchKinds)].label; l != "" {
				r.Labels = map[string]string{skipLabel: l}
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
	byKind := make([][]time.Duration, len(benchKinds))
	for i, d := range lat {
		byKind[i%len(benchKinds)] = append(byKind[i%len(benchKinds)], d)
	}
	for _, d := range byKind {
		slices.Sort(d)
	}
	return byKind
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

func freePort(b testing.TB) string {
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
