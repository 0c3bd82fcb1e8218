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
