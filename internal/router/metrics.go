package router

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/group"
)

// Metrics are the router's Prometheus metrics.
type Metrics struct {
	Duration prometheus.Histogram
	Errors   prometheus.Counter
	Swaps    prometheus.Counter
	Moves    prometheus.Counter
	// AutoSwitches counts groups whose active member changed because a
	// gateway went down or came back, as this node's health checks see it.
	AutoSwitches prometheus.Counter
	LastSuccess  prometheus.Gauge
	// EventToKernel is the time from the change a reconcile took up (a
	// watch event, a gateway's health) to the kernel's switch.
	EventToKernel prometheus.Histogram
	// DampedGateways counts the probe paths held down by flap damping.
	DampedGateways prometheus.Gauge
	traffic        *traffic
}

// NewMetrics registers the router's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "staticroute_reconcile_duration_seconds", Help: "Time of one reconcile of the node.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16),
		}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "staticroute_reconcile_errors_total", Help: "Reconciles that failed."}),
		Swaps:  prometheus.NewCounter(prometheus.CounterOpts{Name: "staticroute_table_swaps_total", Help: "Steering tables switched in."}),
		Moves:  prometheus.NewCounter(prometheus.CounterOpts{Name: "staticroute_gateway_moves_total", Help: "Groups moved to a new gateway in place (nexthop replace)."}),
		EventToKernel: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "staticroute_event_to_kernel_seconds", Help: "From the change a reconcile took up (a StaticRoute, Node or EndpointSlice event, or a gateway's health) to the kernel's switch.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16),
		}),
		AutoSwitches: prometheus.NewCounter(prometheus.CounterOpts{Name: "staticroute_automatic_switches_total", Help: "Groups switched to another member by health checks (failover or failback)."}),
		LastSuccess:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "staticroute_last_successful_apply_timestamp_seconds", Help: "When the kernel last matched the desired state."}),
		DampedGateways: prometheus.NewGauge(prometheus.GaugeOpts{Name: "staticroute_damped_gateways",
			Help: "Health-check paths (gateway, target, protocol, port) held down by flap damping on this node: up, but used only when no other member of their group is."}),
		traffic: newTraffic(),
	}
	for _, c := range []prometheus.Collector{m.Duration, m.Errors, m.Swaps, m.Moves, m.AutoSwitches, m.LastSuccess, m.EventToKernel, m.DampedGateways, m.traffic} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// dampedGateways counts the damped paths of states.
func (m *Metrics) dampedGateways(states map[group.Path]group.State) {
	n := 0
	for _, s := range states {
		if s == group.Damped {
			n++
		}
	}
	m.DampedGateways.Set(float64(n))
}

func (m *Metrics) observe(d time.Duration, err error) {
	m.Duration.Observe(d.Seconds())
	if err != nil {
		m.Errors.Inc()
	}
}

// countTraffic adds what the nftables counters gained since the last read.
func (m *Metrics) countTraffic(now map[string]datapath.Counter) { m.traffic.add(now) }

// resetTraffic forgets the readings after the table was rewritten (its
// counters start from zero).
func (m *Metrics) resetTraffic() { m.traffic.reset() }

// traffic exports packets and bytes steered per group. It is a collector,
// not two CounterVecs: a CounterVec keeps a labelled child per group
// forever (2 MB at 1,000 groups, on every node); this keeps two numbers per
// group that still exists and builds the samples when scraped.
type traffic struct {
	packets, bytes *prometheus.Desc

	mu sync.Mutex
	// seen is the last nftables reading per group: nftables counters
	// restart when the table is rewritten, Prometheus counters must not.
	seen  map[string]datapath.Counter
	total map[string]datapath.Counter
}

func newTraffic() *traffic {
	return &traffic{
		packets: prometheus.NewDesc("staticroute_group_packets_total", "Packets steered to each group's gateway.", []string{"group"}, nil),
		bytes:   prometheus.NewDesc("staticroute_group_bytes_total", "Bytes steered to each group's gateway.", []string{"group"}, nil),
		seen:    map[string]datapath.Counter{},
		total:   map[string]datapath.Counter{},
	}
}

// add takes a reading of every group's nftables counters. A group missing
// from it is gone from the node, and from the metrics.
func (t *traffic) add(now map[string]datapath.Counter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for g := range t.total {
		if _, ok := now[g]; !ok {
			delete(t.total, g)
			delete(t.seen, g)
		}
	}
	for g, c := range now {
		last, sum := t.seen[g], t.total[g]
		if c.Packets >= last.Packets && c.Bytes >= last.Bytes {
			sum.Packets += c.Packets - last.Packets
			sum.Bytes += c.Bytes - last.Bytes
		}
		t.total[g], t.seen[g] = sum, c
	}
}

func (t *traffic) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.seen)
}

func (t *traffic) Describe(ch chan<- *prometheus.Desc) {
	ch <- t.packets
	ch <- t.bytes
}

func (t *traffic) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for g, c := range t.total {
		ch <- prometheus.MustNewConstMetric(t.packets, prometheus.CounterValue, float64(c.Packets), g)
		ch <- prometheus.MustNewConstMetric(t.bytes, prometheus.CounterValue, float64(c.Bytes), g)
	}
}
