package datapath

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/policy/policytest"
	"github.com/staticroute/staticroute/test/netlab"
)

func newFirewall(t testing.TB, n *netlab.NS) *Firewall {
	t.Helper()
	c, err := NewNFTConn(int(n.NS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseLasting() })
	return &Firewall{Conn: c, Opts: policy.DefaultOptions()}
}

func ruleset(t testing.TB, n *netlab.NS) string {
	return n.Exec(t, "nft", "list", "ruleset")
}

func TestFirewallRuleset(t *testing.T) {
	n := nodeWorld(t)
	f := newFirewall(t, n)
	in := nodeInput(
		policytest.Route("primary", "", "198.51.100.4", 0, "192.0.2.7", "198.19.0.0/16"),
		policytest.Route("everything", "", "198.51.100.12", time.Minute, "0.0.0.0/0"),
	)
	d := policy.Compute(in)
	if changed, err := f.Apply(d, nil); err != nil || !changed {
		t.Fatalf("first apply: changed=%v %v", changed, err)
	}
	golden(t, "nft-ruleset", ruleset(t, n))
	if changed, err := f.Apply(d, nil); err != nil || changed {
		t.Fatalf("same state again: changed=%v %v", changed, err)
	}
	// Drift: the table deleted behind our back is written again.
	n.Exec(t, "nft", "delete", "table", "inet", "staticroute")
	if changed, err := f.Apply(d, nil); err != nil || !changed {
		t.Fatalf("after the table was deleted: changed=%v %v", changed, err)
	}
	golden(t, "nft-ruleset", ruleset(t, n))
	// Someone else's table survives our cleanup.
	n.NFT(t, "table ip theirs {\n  chain c {\n    type filter hook input priority 0;\n  }\n}\n")
	if err := f.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := ruleset(t, n); !strings.Contains(got, "table ip theirs") || strings.Contains(got, "staticroute") {
		t.Fatalf("after cleanup:\n%s", got)
	}
	if err := f.Cleanup(); err != nil {
		t.Fatalf("cleanup twice: %v", err)
	}
}

func TestFirewallTenThousandPrefixes(t *testing.T) {
	n := nodeWorld(t)
	f := newFirewall(t, n)
	// Every other address: adjacent ones would merge into one interval.
	dests := make([]string, 10_000)
	for i := range dests {
		dests[i] = netip.AddrFrom4([4]byte{198, 19, byte(i >> 7), byte(i << 1)}).String()
	}
	if _, err := f.Apply(policy.Compute(nodeInput(policytest.Route("many", "", "198.51.100.4", 0, dests...))), nil); err != nil {
		t.Fatal(err)
	}
	out := n.Exec(t, "nft", "list", "set", "inet", "staticroute", "group0")
	if c := strings.Count(out, "198.19."); c != 10_000 {
		t.Fatalf("the set holds %d of 10000 prefixes", c)
	}
}

func TestFirewallCountsPerGroup(t *testing.T) {
	w := netlab.NewWorld(t)
	d := policy.Compute(worldInput(primaryRoute))
	if _, err := newKernel(t, w.Node).Apply(d); err != nil {
		t.Fatal(err)
	}
	f := newFirewall(t, w.Node)
	if _, err := f.Apply(d, nil); err != nil {
		t.Fatal(err)
	}
	if got := netlab.Answers(t, w.Node); got != netlab.GwAPublic {
		t.Fatalf("echo saw %s", got)
	}
	c, err := f.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c["primary"].Packets == 0 || c["primary"].Bytes == 0 {
		t.Fatalf("counters %+v: want packets for group primary", c)
	}
}

// applyAll applies d as the router does, through the Datapath: routes,
// the record of the links to mark, the firewall and src_valid_mark.
func applyAll(t *testing.T, n *netlab.NS, d policy.Desired) (*Kernel, *Firewall) {
	t.Helper()
	k, f := newKernel(t, n), newFirewall(t, n)
	if _, err := (&Datapath{Routes: k, Firewall: f, Marks: &ValidMarks{Kernel: k, Firewall: f}}).Apply(d); err != nil {
		t.Fatal(err)
	}
	return k, f
}

// A client inside a routed prefix reaches the node's public address, and
// a NodePort-style DNAT to a pod: with the connmark bit restored as the
// packet mark, the fwmark rule and src_valid_mark (set per link over
// rtnetlink, not in /proc/sys), strict rp_filter accepts its packets and
// the replies leave by the public side they came in on.
func TestInboundClientInsideARoutedPrefix(t *testing.T) {
	w := netlab.NewWorld(t)
	const client = "198.19.5.5"
	node := netlab.NodePublic + ":7008"
	nodePort := netlab.NodePublic + ":30080"
	w.Inet.IP(t, "addr", "add", client+"/32", "dev", "lo")
	netlab.UDPEcho(t, w.Node, node)
	netlab.UDPEcho(t, w.Pod, "198.18.64.2:7008")
	w.Node.NFT(t, `table ip nodeport {
  chain pre { type nat hook prerouting priority -100; ip daddr `+netlab.NodePublic+` udp dport 30080 dnat to 198.18.64.2:7008; }
}`)
	d := policy.Compute(worldInput(policytest.Route("wide", "", "198.51.100.4", 0, "198.19.0.0/16", netlab.EchoAddr)))
	if _, err := newKernel(t, w.Node).Apply(d); err != nil {
		t.Fatal(err)
	}
	// Control: routes alone, no marks: strict rp_filter drops the client.
	if got := netlab.Ask(t, w.Inet, client, node, 20); got != 0 {
		t.Fatalf("without marks %d/20 answered: the test cannot tell the marks' effect", got)
	}
	applyAll(t, w.Node, d)
	if all := w.Node.Exec(t, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark"); strings.TrimSpace(all) != "0" {
		t.Fatalf("net.ipv4.conf.all.src_valid_mark is %s: the router must not need it", all)
	}
	if got := netlab.Ask(t, w.Inet, client, node, 20); got != 20 {
		t.Fatalf("with marks %d/20 answered from %s", got, node)
	}
	if got := netlab.Ask(t, w.Inet, client, nodePort, 20); got != 20 {
		t.Fatalf("NodePort: %d/20 answered from %s", got, nodePort)
	}
	// Outbound from the node and the pod still leaves via the gateway.
	if got := netlab.Answers(t, w.Node); got != netlab.GwAPublic {
		t.Fatalf("outbound after inbound: echo saw %s", got)
	}
	if got := netlab.Answers(t, w.Pod); got != netlab.GwAPublic {
		t.Fatalf("the pod after inbound: echo saw %s", got)
	}
}

// Whatever the CNI names its links, pods egress via the gateway: on a veth
// of a listed name (lxc0), an unlisted one (pod1), and behind a bridge
// (cni0). Interface names once decided what was inbound, and a pod behind
// a name not in the list leaked out via the node's own address.
func TestPodsBehindAnyLinkEgressViaTheGateway(t *testing.T) {
	w := netlab.NewWorld(t)
	pods := map[string]*netlab.NS{"lxc0": w.Pod, "pod1": w.AddPod(t, "pod1", false), "cni0": w.AddPod(t, "cni0", true)}
	for link, pod := range pods {
		if got := netlab.Answers(t, pod); got != netlab.NodePublic {
			t.Fatalf("before steering the pod behind %s reached the echo as %s", link, got)
		}
	}
	applyAll(t, w.Node, policy.Compute(worldInput(primaryRoute)))
	for link, pod := range pods {
		if got := netlab.Answers(t, pod); got != netlab.GwAPublic {
			t.Errorf("the pod behind %s reached the echo as %s, want via gateway A (%s)", link, got, netlab.GwAPublic)
		}
	}
}

// src_valid_mark goes on per link, the links turned on are recorded in
// our table, a restarted router reads the record, and Restore turns off
// exactly those: a link that was on before stays on, `all` is never
// touched.
func TestValidMarksRecordedAndRestored(t *testing.T) {
	n := nodeWorld(t)
	n.Sysctl(t, "net.ipv4.conf.vpc0.src_valid_mark", "1") // someone else's
	get := func(link string) string {
		return strings.TrimSpace(n.Exec(t, "sysctl", "-n", "net.ipv4.conf."+link+".src_valid_mark"))
	}
	d := policy.Compute(nodeInput(primaryRoute))
	k, f := applyAll(t, n, d)
	if get("pub0") != "1" || get("vpc0") != "1" || get("all") != "0" || get("lo") != "0" {
		t.Fatalf("after apply: pub0=%s vpc0=%s all=%s lo=%s, want 1 1 0 0", get("pub0"), get("vpc0"), get("all"), get("lo"))
	}
	// A link that appears later is turned on at the next reconcile.
	n.IP(t, "link", "add", "late0", "type", "veth", "peer", "name", "late1")
	marks := &ValidMarks{Kernel: k, Firewall: f}
	if _, err := (&Datapath{Routes: k, Firewall: f, Marks: marks}).Apply(d); err != nil {
		t.Fatal(err)
	}
	if get("late0") != "1" {
		t.Fatalf("late0: %s", get("late0"))
	}
	// A restarted router (a new Firewall and ValidMarks) finds the record.
	restarted := &ValidMarks{Kernel: newKernel(t, n), Firewall: newFirewall(t, n)}
	on, err := restarted.Read()
	n.Must(t, err)
	if len(on.TurnOn) != 0 {
		t.Fatalf("after a restart it would turn on %v again", on)
	}
	if _, err := restarted.Firewall.Apply(d, on.Record); err != nil {
		t.Fatal(err)
	}
	n.Must(t, restarted.Restore())
	n.Must(t, restarted.Firewall.Cleanup())
	if get("pub0") != "0" || get("late0") != "0" || get("vpc0") != "1" {
		t.Fatalf("after restore: pub0=%s late0=%s vpc0=%s, want 0 0 1", get("pub0"), get("late0"), get("vpc0"))
	}
}

// A thousand groups make a thousand sets and rules in one transaction; the
// kernel acknowledges each, and the acknowledgements must fit.
func TestFirewallThousandGroups(t *testing.T) {
	n := nodeWorld(t)
	f := newFirewall(t, n)
	var routes []*v1.StaticRoute
	all := prefixes(10_000)
	for i := range 1000 {
		routes = append(routes, policytest.Route(fmt.Sprintf("r%04d", i), "", "198.51.100.4", time.Duration(i)*time.Second, all[i*10:i*10+10]...))
	}
	if _, err := f.Apply(policy.Compute(nodeInput(routes...)), nil); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(ruleset(t, n), "counter packets"); c != 1000 {
		t.Fatalf("%d counters, want 1000", c)
	}
}
