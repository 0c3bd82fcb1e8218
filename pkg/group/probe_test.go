package group

import (
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
)

func TestProbeTimeout(t *testing.T) {
	for _, c := range []struct {
		period, timeout int32
		want            time.Duration
	}{
		{0, 0, 100 * time.Millisecond}, // the default period, half of it
		{50, 0, 25 * time.Millisecond}, // the smallest period
		{1000, 0, 500 * time.Millisecond},
		{200, 150, 150 * time.Millisecond}, // as set
		{200, 900, 200 * time.Millisecond}, // never past the period (the webhook refuses it)
	} {
		sr := &v1.StaticRoute{Spec: v1.StaticRouteSpec{Gateway: "192.0.2.1", HealthCheck: &v1.HealthCheck{PeriodMilliseconds: c.period, TimeoutMilliseconds: c.timeout}}}
		p, ok := ProbeOf(sr)
		if !ok || p.Timeout != c.want {
			t.Errorf("period %d, timeout %d: %s, want timeout %s", c.period, c.timeout, p, c.want)
		}
	}
}

func TestProbesOfEveryGateway(t *testing.T) {
	sr := &v1.StaticRoute{Spec: v1.StaticRouteSpec{Gateways: []string{"198.51.100.4", "bad", "198.51.100.20"},
		HealthCheck: &v1.HealthCheck{Target: "192.0.2.1"}}}
	ps, ok := ProbesOf(sr)
	if len(ps) != 3 || !ok[0] || ok[1] || !ok[2] {
		t.Fatalf("ProbesOf = %v %v, want three, the second without a probe", ps, ok)
	}
	if got := ps[0].Path.String() + ", " + ps[2].Path.String(); got != "icmp 192.0.2.1 via 198.51.100.4, icmp 192.0.2.1 via 198.51.100.20" {
		t.Errorf("paths %s", got)
	}
	if ps, _ := ProbesOf(&v1.StaticRoute{Spec: v1.StaticRouteSpec{Gateways: []string{"198.51.100.4"}}}); ps != nil {
		t.Errorf("no health check: %v, want none", ps)
	}
}
