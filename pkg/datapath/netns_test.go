package datapath

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/staticroute/staticroute/pkg/policy"
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

// dump is the namespace's rules and routes (all tables but local): ours
// first, the active steering table's number replaced by ACTIVE and the
// other's by STANDBY, so that a state prints the same whichever table
// holds it.
func dump(t testing.TB, n *netlab.NS, k *Kernel) string {
	t.Helper()
	active, err := k.Active()
	n.Must(t, err)
	ours := []int{k.Opts.Tables[0], k.Opts.Tables[1]}
	if active != 0 {
		ours = []int{active, k.other(active)}
	}
	var lines []string
	lines = append(lines, "# ip rule")
	lines = append(lines, strings.Split(strings.TrimSpace(n.IP(t, "-4", "rule", "show")), "\n")...)
	lines = append(lines, "# ip route show table all (without local), our tables first")
	byTable := map[int][]string{}
	var rest []string
	for _, l := range strings.Split(strings.TrimSpace(n.IP(t, "-4", "route", "show", "table", "all")), "\n") {
		switch {
		case l == "" || strings.Contains(l, "table local"):
		case strings.Contains(l, fmt.Sprintf("table %d ", ours[0])):
			byTable[ours[0]] = append(byTable[ours[0]], l)
		case strings.Contains(l, fmt.Sprintf("table %d ", ours[1])):
			byTable[ours[1]] = append(byTable[ours[1]], l)
		default:
			rest = append(rest, l)
		}
	}
	lines = append(append(append(lines, byTable[ours[0]]...), byTable[ours[1]]...), rest...)
	lines = append(lines, "# ip nexthop")
	for _, l := range strings.Split(strings.TrimSpace(n.IP(t, "nexthop", "show")), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, "\n") + "\n"
	if active != 0 {
		out = strings.ReplaceAll(out, fmt.Sprint(active), "ACTIVE")
		out = strings.ReplaceAll(out, fmt.Sprint(k.other(active)), "STANDBY")
	}
	return out
}

// other is the steering table that is not table.
func (k *Kernel) other(table int) int {
	if table == k.Opts.Tables[0] {
		return k.Opts.Tables[1]
	}
	return k.Opts.Tables[0]
}

// wantedIn is d's steering routes and the groups' nexthops on k's VPC
// link, as Apply computes them.
func (k *Kernel) wantedIn(d policy.Desired) ([]kroute, []nexthop, error) {
	link, err := k.vpcLink(d)
	if err != nil {
		return nil, nil, err
	}
	want, nhs := wanted(d, link, uint8(k.Opts.Protocol))
	return want, nhs, nil
}
