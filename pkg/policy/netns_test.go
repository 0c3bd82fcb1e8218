package policy

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/staticroute/staticroute/test/netlab"
)

// nodeWorld sets up a node: a VPC link vpc0 (198.51.100.10/24) and a public
// link pub0 (203.0.113.10/26) holding the default route.
func nodeWorld(t testing.TB) *netlab.NS {
	n := netlab.New(t)
	n.Stub(t, "vpc0", "198.51.100.10/24")
	pub := n.Stub(t, "pub0", "203.0.113.10/26")
	n.Must(t, n.NL.RouteAdd(&netlink.Route{LinkIndex: pub.Attrs().Index, Gw: net.ParseIP("203.0.113.1")}))
	return n
}

// dump is the namespace's rules and routes (all tables but local), with the
// active steering table's number replaced by ACTIVE and the inactive one's
// by INACTIVE, so that a state prints the same whichever table holds it.
func dump(t testing.TB, n *netlab.NS, k *Kernel) string {
	t.Helper()
	active, err := k.Active()
	n.Must(t, err)
	var lines []string
	lines = append(lines, "# ip rule")
	lines = append(lines, strings.Split(strings.TrimSpace(n.IP(t, "-4", "rule", "show")), "\n")...)
	lines = append(lines, "# ip route show table all (without local)")
	for _, l := range strings.Split(strings.TrimSpace(n.IP(t, "-4", "route", "show", "table", "all")), "\n") {
		if !strings.Contains(l, "table local") && l != "" {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "# ip nexthop")
	for _, l := range strings.Split(strings.TrimSpace(n.IP(t, "nexthop", "show")), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, "\n") + "\n"
	if active != 0 {
		out = strings.ReplaceAll(out, fmt.Sprint(active), "ACTIVE")
		out = strings.ReplaceAll(out, fmt.Sprint(k.other(active)), "INACTIVE")
	}
	return out
}
