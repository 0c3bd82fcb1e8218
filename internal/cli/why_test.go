package cli

import (
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"strings"
	"testing"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// What a node does with an address: the longest prefix decides between a
// group's destinations and a carve-out, as the steering table does.
func TestWhyLines(t *testing.T) {
	s := v1.StaticRouteNodeStateStatus{
		Groups: []v1.NodeGroupState{
			{Group: "egress", ActiveMember: "egress-b", Gateway: "198.51.100.12", Prefixes: []string{"0.0.0.0/0", "192.0.2.0/24"}, State: v1.NodeGroupApplied,
				Selection: v1.SelectionNewerDown, Gateways: []v1.NodeGatewayHealth{{Member: "egress-c", Gateway: "198.51.100.13", Health: v1.GatewayDown}}},
			{Group: "narrow", ActiveMember: "narrow", Gateway: "198.51.100.4", Prefixes: []string{"192.0.2.7/32"}, State: v1.NodeGroupError, Message: "boom"},
			{Group: "spread", ActiveMember: "spread", Gateway: "198.51.100.4", Prefixes: []string{"198.19.0.0/16"}, State: v1.NodeGroupApplied,
				Selection: v1.SelectionNewest, Lanes: []v1.NodeLane{
					{Gateway: "198.51.100.4", Open: true, Mark: 0x21, Table: 52333},
					{Gateway: "198.51.100.12", To: "198.51.100.20", Mark: 0x05, Table: 52305},
					{Gateway: "198.51.100.20", Open: true, Mark: 0x11, Table: 52317},
					{Gateway: "198.51.100.30", Member: "old", Draining: true, Mark: 0x12, Table: 52318},
				}, Drain: &v1.NodeDrain{Member: "old", Until: metav1.NewTime(time.Date(2026, 12, 7, 12, 0, 30, 0, time.UTC)), Connections: 7}},
		},
		Steering:  &v1.NodeSteering{RulePriority: 30010, Table: 52102},
		CarveOuts: []v1.NodeCarveOut{{Prefix: "198.51.100.0/24", Reason: "the VPC CIDR 198.51.100.0/24"}, {Prefix: "169.254.0.0/16", Reason: "the special range 169.254.0.0/16"}},
	}
	for addr, want := range map[string][]string{
		"192.0.2.9": {"steered by group egress, member egress-b, via gateway 198.51.100.12", "the gateways of newer members are down", "egress-c's 198.51.100.13 Down",
			"the route 192.0.2.0/24 via 198.51.100.12 in table 52102, which ip rule priority 30010"},
		"198.19.7.7": {"steered by group spread, member spread, over its 3 gateways",
			"a new connection takes one of 198.51.100.4, 198.51.100.20 (round-robin), and keeps it for its life; not 198.51.100.12",
			"connections on 198.51.100.12 leave by 198.51.100.20 while 198.51.100.12 is down: conntrack mark 0x5, ip rule fwmark 0x5 lookup 52305",
			"connections on 198.51.100.4 leave by 198.51.100.4: conntrack mark 0x21",
			"a packet in no lane (a connection from before the lanes) takes the route 198.19.0.0/16 via 198.51.100.4 in table 52102",
			"connections on 198.51.100.30 (draining, old's) leave by 198.51.100.30: conntrack mark 0x12",
			"a planned failover drains: connections opened before it keep member old's gateways until they end or until 2026-12-07T12:00:30Z (7 now)"},
		"192.0.2.7":      {"steered by group narrow", "the route 192.0.2.7/32", "but the group is Error on this node: boom"},
		"203.0.113.99":   {"steered by group egress", "the route 0.0.0.0/0"},
		"198.51.100.200": {"not steered: inside the VPC CIDR 198.51.100.0/24", "group egress's 0.0.0.0/0 holds it too"},
	} {
		got := strings.Join(whyLines(netip.MustParseAddr(addr), s), "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s:\n%s\ndoes not say %q", addr, got, w)
			}
		}
	}
	none := v1.StaticRouteNodeStateStatus{CarveOuts: s.CarveOuts}
	if got := strings.Join(whyLines(netip.MustParseAddr("169.254.1.1"), none), "\n"); !strings.Contains(got, "no group that selects this node") || !strings.Contains(got, "the special range 169.254.0.0/16") {
		t.Errorf("no group, a special range: %s", got)
	}
	if got := strings.Join(whyLines(netip.MustParseAddr("203.0.113.99"), none), "\n"); !strings.Contains(got, "leaves by the node's main table") {
		t.Errorf("no group: %s", got)
	}
}
