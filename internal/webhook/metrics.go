package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the webhook's own Prometheus metrics; controller-runtime adds
// request counts and coarse latencies per path.
type Metrics struct {
	// Duration of one admission decision inside the webhook (lock wait,
	// validation, reservation), finer than controller-runtime's buckets.
	Duration *prometheus.HistogramVec
	// Reservations held (admitted routes the cache has not shown yet).
	Reservations prometheus.GaugeFunc
}

// NewMetrics registers the webhook's metrics with reg.
func NewMetrics(reg prometheus.Registerer, store *Store) (*Metrics, error) {
	m := &Metrics{
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "staticroute_admission_duration_seconds",
			Help:    "Time the webhook takes to decide on one StaticRoute, by operation and result (admitted, rejected, unavailable).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14), // 25µs .. 200ms
		}, []string{"operation", "result"}),
		Reservations: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "staticroute_admission_reservations",
			Help: "Admitted StaticRoutes the webhook's cache does not show yet.",
		}, func() float64 { return float64(store.Reservations()) }),
	}
	for _, c := range []prometheus.Collector{m.Duration, m.Reservations} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
