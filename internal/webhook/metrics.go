package webhook

import (
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the webhook's own Prometheus metrics; controller-runtime adds
// request counts and coarse latencies per path.
type Metrics struct {
	// Duration of one admission decision inside the webhook (lock wait,
	// validation, reservation), finer than controller-runtime's buckets.
	Duration *prometheus.HistogramVec
	// Duration of one admission request inside the process, from its
	// handler's start to the end of the answer: body, decoding, decision,
	// encoding. What the API server waits for beyond it is transport.
	Request prometheus.Histogram
	// Reservations held (admitted routes the cache has not shown yet).
	Reservations prometheus.GaugeFunc
	// LiveReads counts the live reads that confirm a refusal, by result.
	LiveReads *prometheus.CounterVec
}

// LiveRead counts one live read of a route that a refusal rested on.
func (m *Metrics) LiveRead(result string) { m.LiveReads.WithLabelValues(result).Inc() }

// Instrument times every request h serves in m.Request.
func (m *Metrics) Instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		m.Request.Observe(time.Since(start).Seconds())
	})
}

// NewMetrics registers the webhook's metrics with reg.
func NewMetrics(reg prometheus.Registerer, store *Store) (*Metrics, error) {
	m := &Metrics{
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "staticroute_admission_duration_seconds",
			Help:    "Time the webhook takes to decide on one StaticRoute, by operation and result (admitted, rejected, unavailable).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14), // 25µs .. 200ms
		}, []string{"operation", "result"}),
		Request: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "staticroute_admission_request_duration_seconds",
			Help: "Time one admission request takes inside the webhook, from the start of its handler to the end of the answer.",
			// Twice as fine as the decision's: its p99 is the webhook's
			// own share of what admission adds, compared with 2 ms.
			Buckets: prometheus.ExponentialBuckets(25e-6, math.Sqrt2, 27), // 25µs .. 205ms
		}),
		Reservations: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "staticroute_admission_reservations",
			Help: "Admitted StaticRoutes the webhook's cache does not show yet.",
		}, func() float64 { return float64(store.Reservations()) }),
	}
	m.LiveReads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "staticroute_admission_live_reads_total",
		Help: "Routes read from the API server to confirm a refusal that the cache or a reservation alone would make, by result: found (the refusal stands), gone (dropped; the request is judged again), failed.",
	}, []string{"result"})
	for _, c := range []prometheus.Collector{m.Duration, m.Request, m.Reservations, m.LiveReads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
