package router

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/staticroute/staticroute/pkg/datapath"
)

func TestTrafficCountersSurviveTableRewritesAndEndWithTheirGroup(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	want := func(step, text string) {
		t.Helper()
		err := testutil.GatherAndCompare(reg, strings.NewReader(`# HELP staticroute_group_packets_total Packets steered to each group's gateway.
# TYPE staticroute_group_packets_total counter
`+text), "staticroute_group_packets_total")
		if err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	m.countTraffic(map[string]datapath.Counter{"a": {Packets: 10, Bytes: 1000}, "b": {Packets: 1, Bytes: 100}})
	want("first reading", "staticroute_group_packets_total{group=\"a\"} 10\nstaticroute_group_packets_total{group=\"b\"} 1\n")
	m.countTraffic(map[string]datapath.Counter{"a": {Packets: 15, Bytes: 1500}, "b": {Packets: 1, Bytes: 100}})
	want("counters grew", "staticroute_group_packets_total{group=\"a\"} 15\nstaticroute_group_packets_total{group=\"b\"} 1\n")
	m.resetTraffic() // the nftables table was rewritten: its counters start at zero
	m.countTraffic(map[string]datapath.Counter{"a": {Packets: 2, Bytes: 200}, "b": {Packets: 0}})
	want("after a rewrite the sum goes on", "staticroute_group_packets_total{group=\"a\"} 17\nstaticroute_group_packets_total{group=\"b\"} 1\n")
	m.countTraffic(map[string]datapath.Counter{"a": {Packets: 3, Bytes: 300}})
	want("a group gone from the node is gone from the metrics", "staticroute_group_packets_total{group=\"a\"} 18\n")
	m.countTraffic(map[string]datapath.Counter{"a": {Packets: 1, Bytes: 100}})
	want("a counter that went back without a rewrite adds nothing", "staticroute_group_packets_total{group=\"a\"} 18\n")
}
