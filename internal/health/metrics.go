package health

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staticroute/staticroute/pkg/group"
)

// Metrics are the health checks' Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	RTT    *prometheus.HistogramVec
	Up     *prometheus.GaugeVec
	Probes *prometheus.CounterVec
}

// NewMetrics registers the health checks' metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"gateway", "target", "protocol", "port"}
	m := &Metrics{
		RTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "staticroute_probe_rtt_seconds",
			Help:    "Round trip of answered health-check probes, through their gateway.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, labels),
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "staticroute_gateway_up",
			Help: "1 if the path through the gateway is up as this node's probes see it (damped or not), 0 if down or no probe was answered yet.",
		}, labels),
		Probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "staticroute_probes_total",
			Help: "Health-check probes sent, by result (answered, lost).",
		}, append(labels, "result")),
	}
	for _, c := range []prometheus.Collector{m.RTT, m.Up, m.Probes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func pathLabels(p group.Path) prometheus.Labels {
	return prometheus.Labels{"gateway": p.Gateway.String(), "target": p.Target.String(), "protocol": p.Protocol, "port": strconv.Itoa(int(p.Port))}
}

func (m *Metrics) observe(p group.Path, h group.Health, r Result) {
	if m == nil {
		return
	}
	l := pathLabels(p)
	up := 0.0
	if h.Answered && !h.Down {
		up = 1
	}
	m.Up.With(l).Set(up)
	if h.Results == 0 {
		return
	}
	result := "lost"
	if r.Answered {
		result = "answered"
		m.RTT.With(l).Observe(r.RTT.Seconds())
	}
	l["result"] = result
	m.Probes.With(l).Inc()
}

func (m *Metrics) forget(p group.Path) {
	if m == nil {
		return
	}
	l := pathLabels(p)
	m.RTT.Delete(l)
	m.Up.Delete(l)
	for _, r := range []string{"answered", "lost"} {
		l["result"] = r
		m.Probes.Delete(l)
	}
}
