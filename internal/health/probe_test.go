package health

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
	"github.com/staticroute/staticroute/test/netlab"
)

const tcpPort = 7443

// probeWorld is the tutorial's world with one node whose router state
// (routes, nftables, src_valid_mark) is applied for routes, as the router
// would.
type probeWorld struct {
	w      *netlab.World
	opts   policy.Options
	d      policy.Desired
	apply  func()
	probes map[string]policy.Probe // by path, as printed
}

func route(name, grp, gw string, age time.Duration, hc *v1.HealthCheck, dests ...string) *v1.StaticRoute {
	return &v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1_800_000_000, 0).Add(age))},
		Spec:       v1.StaticRouteSpec{Destinations: dests, Gateway: gw, Group: grp, HealthCheck: hc},
	}
}

func newProbeWorld(t *testing.T, routes ...*v1.StaticRoute) *probeWorld {
	t.Helper()
	w := netlab.NewWorld(t)
	netlab.StartTCPEcho(t, w.Inet, tcpPort)
	pw := &probeWorld{w: w, opts: policy.DefaultOptions(), probes: map[string]policy.Probe{}}
	k, err := datapath.NewKernel(w.Node.NS, pw.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	conn, err := datapath.NewNFTConn(int(w.Node.NS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseLasting() })
	fw := &datapath.Firewall{Conn: conn, Opts: pw.opts}
	marks := &datapath.ValidMarks{Kernel: k, Firewall: fw}
	vpc := netip.MustParsePrefix("198.51.100.0/24")
	facts, err := k.ReadNode(datapath.VPCHint{CIDRs: []netip.Prefix{vpc}})
	if err != nil {
		t.Fatal(err)
	}
	cluster := validate.Config{VPC: []netip.Prefix{vpc}, Pod: []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18")}}
	pw.d = policy.Compute(policy.Input{Routes: routes, Node: facts, Cluster: cluster})
	pw.apply = func() {
		t.Helper()
		k.Invalidate() // what the router's route and link events do
		if _, err := (&datapath.Datapath{Routes: k, Firewall: fw, Marks: marks}).Apply(pw.d); err != nil {
			t.Fatal(err)
		}
	}
	pw.apply()
	for _, p := range pw.d.Probes {
		pw.probes[p.Path.String()] = p
	}
	return pw
}

// answered sends n probes of path from inside the node and counts the
// answers.
func (pw *probeWorld) answered(t *testing.T, path string, n int) int {
	t.Helper()
	p, ok := pw.probes[path]
	if !ok {
		t.Fatalf("no probe %q in %v", path, pw.d.Probes)
	}
	got := 0
	netlab.InNS(t, pw.w.Node, func() error {
		pr, err := newProber(p.Path, pw.opts.ProbeMark(p.Slot), 4242+p.Slot)
		if err != nil {
			return err
		}
		defer pr.close()
		for range n {
			r := pr.probe(context.Background(), 300*time.Millisecond)
			if r.Err != nil {
				return r.Err
			}
			if r.Answered {
				got++
			}
		}
		return nil
	})
	return got
}

// Probes leave through their own member's gateway whatever member carries
// the group, their answers pass the node's strict rp_filter although the
// target is not steered (the probe mark, restored from the connection,
// selects the probe's table in the reverse-path check), and they never
// leave by the public interface. A probe beyond the gateway sees a broken
// NAT that a probe of the gateway itself does not.
func TestProbesTakeTheirOwnGateway(t *testing.T) {
	echo := &v1.HealthCheck{Target: netlab.EchoAddr}
	tcp := &v1.HealthCheck{Target: netlab.EchoAddr, Protocol: v1.ProbeTCP, Port: tcpPort}
	pw := newProbeWorld(t,
		// The echo address is not among the destinations: the answers
		// pass rp_filter only by the probe mark.
		route("a", "egress", netlab.GwAVPC, 0, echo, "198.19.0.0/16"),
		route("b", "egress", netlab.GwBVPC, time.Minute, tcp, "198.19.0.0/16"),
		route("a-self", "", netlab.GwAVPC, 0, &v1.HealthCheck{}, "203.0.113.128/26"),
	)
	viaA := "icmp 192.0.2.7 via " + netlab.GwAVPC
	viaB := fmt.Sprintf("tcp 192.0.2.7:%d via %s", tcpPort, netlab.GwBVPC)
	selfA := "icmp " + netlab.GwAVPC + " via " + netlab.GwAVPC
	if g := pw.d.Groups[1]; g.Name != "egress" || g.Active != "b" {
		t.Fatalf("b, the newest, must carry the group: %s", pw.d)
	}
	// Count what leaves by the public interface towards the echo.
	pw.w.Node.NFT(t, `table inet leak { chain out { type filter hook postrouting priority 0; oifname "pub0" ip daddr 192.0.2.7 counter; }; }`)
	leaked := func() string {
		out := pw.w.Node.Exec(t, "nft", "list", "chain", "inet", "leak", "out")
		return out[strings.Index(out, "counter"):]
	}

	for _, path := range []string{viaA, viaB, selfA} {
		if got := pw.answered(t, path, 5); got != 5 {
			t.Fatalf("%s: %d of 5 answered with both gateways up", path, got)
		}
	}

	// Gateway B gone: its probes are lost, A's answered, though B still
	// carries the group in the kernel.
	pw.w.GwB.IP(t, "link", "set", "vpc", "down")
	if a, b := pw.answered(t, viaA, 5), pw.answered(t, viaB, 3); a != 5 || b != 0 {
		t.Fatalf("gateway B down: via A %d of 5 answered (want 5), via B %d of 3 (want 0)", a, b)
	}
	pw.w.GwB.IP(t, "link", "set", "vpc", "up")

	// NAT broken on A, the host up: the probe beyond A is lost, the probe
	// of A itself still answered.
	pw.w.GwA.Exec(t, "nft", "delete", "table", "ip", "nat")
	if beyond, self := pw.answered(t, viaA, 5), pw.answered(t, selfA, 5); beyond != 0 || self != 5 {
		t.Fatalf("A's NAT broken: beyond A %d of 5 answered (want 0), A itself %d of 5 (want 5)", beyond, self)
	}
	pw.w.GwA.NFT(t, `table ip nat {
  chain post { type nat hook postrouting priority 100; ip saddr 198.51.100.0/24 oifname "pub" masquerade; }
}`)
	if got := pw.answered(t, viaA, 5); got != 5 {
		t.Fatalf("A's NAT back: %d of 5 answered", got)
	}

	// The probe's route gone from its table: the table's unreachable
	// default fails it, never the steering table or main.
	p := pw.probes[viaA]
	pw.w.Node.IP(t, "route", "del", "192.0.2.7/32", "table", fmt.Sprint(pw.opts.ProbeTable(p.Slot)))
	if got := pw.answered(t, viaA, 3); got != 0 {
		t.Fatalf("the probe route deleted: %d of 3 answered, want 0", got)
	}
	pw.apply()
	if got := pw.answered(t, viaA, 3); got != 3 {
		t.Fatalf("the probe route back: %d of 3 answered", got)
	}
	if got := leaked(); !strings.HasPrefix(got, "counter packets 0 ") {
		t.Fatalf("probes left by the public interface: %s", got)
	}

	// Without our nftables table (the mark copied to the connection and
	// back), strict rp_filter drops the answers: the machinery matters.
	pw.w.Node.Exec(t, "nft", "delete", "table", "inet", pw.opts.NFTable)
	if got := pw.answered(t, viaA, 3); got != 0 {
		t.Fatalf("without the connection mark: %d of 3 answered, want 0 (rp_filter should drop them)", got)
	}
	pw.apply()
	if got := pw.answered(t, viaA, 3); got != 3 {
		t.Fatalf("the table back: %d of 3 answered", got)
	}
}
