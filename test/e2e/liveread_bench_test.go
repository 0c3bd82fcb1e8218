package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// BenchmarkRefusalLiveRead: what confirming a refusal with the API server
// costs one admission. Through the real API server and webhook, server-side
// dry-run creates of three kinds taking turns, 300 of each: refused for an
// overlap with another group's route (the webhook reads that route live
// before it refuses), refused for the route's own fault (a gateway outside
// the VPC: no live read), and admitted (no live read). The first two
// differ by the live read alone.
func BenchmarkRefusalLiveRead(b *testing.B) {
	e := startAdmission(b)
	c := e.cp.Client(b)
	ctx := context.Background()
	blocker := &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: "blocker"}, Spec: v1.StaticRouteSpec{Destinations: []string{"192.0.2.0/24"}, Gateway: "10.116.0.4"}}
	if err := c.Create(ctx, blocker); err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second) // the webhook's cache shows it
	kinds := []struct {
		name   string
		route  func(i int) *v1.StaticRoute
		refuse string // what the refusal says; "" admitted
	}{
		{"overlap (live read)", func(i int) *v1.StaticRoute {
			return &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("o-%d", i)}, Spec: v1.StaticRouteSpec{Destinations: []string{"192.0.2.7"}, Gateway: "10.116.0.5"}}
		}, "must not overlap"},
		{"own fault (none)", func(i int) *v1.StaticRoute {
			return &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("f-%d", i)}, Spec: v1.StaticRouteSpec{Destinations: []string{"198.51.100.7"}, Gateway: "192.0.2.1"}}
		}, "outside the VPC"},
		{"admitted (none)", func(i int) *v1.StaticRoute {
			return &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("a-%d", i)}, Spec: v1.StaticRouteSpec{Destinations: []string{"198.51.100.7"}, Gateway: "10.116.0.5"}}
		}, ""},
	}
	const n = 300
	lat := make([][]time.Duration, len(kinds))
	for i := range n {
		for k, kind := range kinds {
			start := time.Now()
			err := c.Create(ctx, kind.route(i), client.DryRunAll)
			lat[k] = append(lat[k], time.Since(start))
			switch {
			case kind.refuse == "" && err != nil, kind.refuse != "" && (err == nil || !strings.Contains(err.Error(), kind.refuse)):
				b.Fatalf("%s: %v", kind.name, err)
			}
		}
	}
	q := func(ds []time.Duration, f float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[int(f*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.Logf("server-side dry-run creates through the API server and the webhook, %d of each kind taking turns (ms):", n)
	for k, kind := range kinds {
		b.Logf("  %-22s p50 %6.2f  p99 %6.2f", kind.name, q(lat[k], .5), q(lat[k], .99))
	}
	b.ReportMetric(q(lat[0], .5)-q(lat[1], .5), "p50-ms-live-read")
	b.ReportMetric(q(lat[0], .99)-q(lat[1], .99), "p99-ms-live-read")
	b.ReportMetric(q(lat[2], .5), "p50-ms-admitted")
}
