package router

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staticroute/staticroute/pkg/policy"
)

// Metrics are the router's Prometheus metrics.
type Metrics struct {
	Duration    prometheus.Histogram
	Errors      prometheus.Counter
	Swaps       prometheus.Counter
	Moves       prometheus.Counter
	LastSuccess prometheus.Gauge
	Packets     *prometheus.CounterVec
	Bytes       *prometheus.CounterVec

	// seen is the last counter reading per group: nftables counters
	// restart when the table is rewritten, Prometheus counters must not.
	seen map[string]policy.Counter
}

// NewMetrics registers the router's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "staticroute_reconcile_duration_seconds", Help: "Time of one reconcile of the node.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16),
		}),
		Errors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "staticroute_reconcile_errors_total", Help: "Reconciles that failed."}),
		Swaps:       prometheus.NewCounter(prometheus.CounterOpts{Name: "staticroute_table_swaps_total", Help: "Steering tables switched in."}),
		Moves:       prometheus.NewCounter(prometheus.CounterOpts{Name: "staticroute_gateway_moves_total", Help: "Groups moved to a new gateway in place (nexthop replace)."}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "staticroute_last_successful_apply_timestamp_seconds", Help: "When the kernel last matched the desired state."}),
		Packets:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "staticroute_group_packets_total", Help: "Packets steered to each group's gateway."}, []string{"group"}),
		Bytes:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "staticroute_group_bytes_total", Help: "Bytes steered to each group's gateway."}, []string{"group"}),
		seen:        map[string]policy.Counter{},
	}
	for _, c := range []prometheus.Collector{m.Duration, m.Errors, m.Swaps, m.Moves, m.LastSuccess, m.Packets, m.Bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(d time.Duration, err error) {
	m.Duration.Observe(d.Seconds())
	if err != nil {
		m.Errors.Inc()
	}
}

// countTraffic adds what the nftables counters gained since the last read.
func (m *Metrics) countTraffic(now map[string]policy.Counter) {
	for g, c := range now {
		last := m.seen[g]
		if c.Packets >= last.Packets && c.Bytes >= last.Bytes {
			m.Packets.WithLabelValues(g).Add(float64(c.Packets - last.Packets))
			m.Bytes.WithLabelValues(g).Add(float64(c.Bytes - last.Bytes))
		}
		m.seen[g] = c
	}
}

// resetTraffic forgets the readings after the table was rewritten (its
// counters start from zero).
func (m *Metrics) resetTraffic() { m.seen = map[string]policy.Counter{} }
