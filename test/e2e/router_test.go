package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/certs"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// The tutorial world's cluster layout, for the webhook and the router alike.
var worldFlags = netlab.PlanFor(1).ClusterFlags()

// ourRuleset is the router's nftables table without its counters' values.
func ourRuleset(t testing.TB, ns *netlab.NS) string {
	return ns.Exec(t, "nft", "-s", "list", "table", "inet", "staticroute")
}

func routeYAML(name, group, gw string, dests ...string) []byte {
	g := ""
	if group != "" {
		g = "\n  group: " + group
	}
	return []byte(fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: %s}
spec:%s
  destinations: [%s]
  gateway: %q
`, name, g, `"`+strings.Join(dests, `", "`)+`"`, gw))
}

func waitAnswer(t *testing.T, ns *netlab.NS, want string) {
	t.Helper()
	err := framework.Eventually(context.Background(), 20*time.Second, func() error {
		if got := netlab.Answers(t, ns); got != want {
			return fmt.Errorf("echo saw %s, want %s", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func nodeState(t *testing.T, cp *framework.ControlPlane, node string) v1.StaticRouteNodeState {
	t.Helper()
	var s v1.StaticRouteNodeState
	out := cp.Kubectl(context.Background(), nil, "get", "staticroutenodestate", node, "-o", "json")
	if out.Err != nil {
		return s
	}
	if err := json.Unmarshal([]byte(out.Stdout), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// worldCluster is a real API server with config/test installed and the
// webhook running, the tutorial's world in namespaces, and its node
// registered as Node node-a (with the given labels) with access to the API
// server from inside its namespace.
type worldCluster struct {
	cp         *framework.ControlPlane
	w          *netlab.World
	kubeconfig string   // node-a's router credentials
	routerArgs []string // the router flags for node-a
	api        *netlab.Forwarder
	certDir    string // the webhook's certificate and CA
}

func startWorldCluster(t testing.TB, labels string) *worldCluster {
	t.Helper()
	framework.RequireRoot(t)
	cp := framework.StartControlPlane(t)
	certDir, ca := framework.NewWebhookCerts(t)
	cp.Install(t, ca)
	framework.StartWebhook(t, cp, certDir, worldFlags...)
	w := netlab.NewWorld(t)
	cp.MustKubectl(t, []byte("apiVersion: v1\nkind: Node\nmetadata: {name: node-a, labels: {"+labels+"}}\n"), "create", "-f", "-")
	kubeconfig, api := framework.NodeAccess(t, cp, w.Node, "node-a")
	return &worldCluster{
		cp: cp, w: w, api: api, certDir: certDir,
		kubeconfig: kubeconfig,
		routerArgs: append([]string{"--node-name", "node-a"}, worldFlags...),
	}
}

// TestNodeRouter runs the real router binary inside the tutorial's node,
// unprivileged but for CAP_NET_ADMIN, against a real API server, and plays
// the tutorial: primary, failover under traffic, failback, drift, restart
// under traffic, SIGTERM, --cleanup.
func TestNodeRouter(t *testing.T) {
	env := startWorldCluster(t, "pool: egress")
	cp, w, kubeconfig, args := env.cp, env.w, env.kubeconfig, env.routerArgs
	// Metrics and probes served as in the DaemonSet, on the node's loopback.
	router := framework.StartRouter(t, kubeconfig, w.Node, append(args, "--metrics-bind-address", "127.0.0.1:9402", "--health-probe-bind-address", "127.0.0.1:9403")...)

	if got := netlab.Answers(t, w.Node); got != netlab.NodePublic {
		t.Fatalf("before any StaticRoute the echo saw %s, want the node's own %s", got, netlab.NodePublic)
	}
	cp.MustKubectl(t, routeYAML("primary", "", "198.51.100.4", netlab.EchoAddr), "apply", "-f", "-")
	waitAnswer(t, w.Node, netlab.GwAPublic)
	waitAnswer(t, w.Pod, netlab.GwAPublic)

	err := framework.Eventually(context.Background(), 10*time.Second, func() error {
		s := nodeState(t, cp, "node-a")
		if len(s.Status.Groups) != 1 || s.Status.Groups[0].State != v1.NodeGroupApplied || s.Status.Groups[0].Gateway != "198.51.100.4" {
			return fmt.Errorf("node state %+v", s.Status)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Node" || s.OwnerReferences[0].Name != "node-a" {
			return fmt.Errorf("owner references %+v", s.OwnerReferences)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a router's token may write only its own node's state", func(t *testing.T) {
		other := []byte(`apiVersion: networking.digitalocean.com/v1
kind: StaticRouteNodeState
metadata: {name: node-b}
`)
		r := cp.Kubectl(context.Background(), other, "--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager", "intruder", "-f", "-")
		if r.Err == nil || !strings.Contains(r.Stderr, "may write only the StaticRouteNodeState of its own node: this token is for node node-a, not node-b") {
			t.Fatalf("writing node-b's state with node-a's token: err=%v\n%s", r.Err, r.Stderr)
		}
	})

	t.Run("failover by applying a new member, under traffic: nothing leaks or is lost", func(t *testing.T) {
		probes := []*netlab.Prober{netlab.StartProber(t, w.Node, time.Millisecond), netlab.StartProber(t, w.Pod, time.Millisecond)}
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		cp.MustKubectl(t, routeYAML("secondary", "primary", "198.51.100.12", netlab.EchoAddr), "apply", "-f", "-")
		waitAnswer(t, w.Node, netlab.GwBPublic)
		t.Logf("apply to gateway B seen: %s", time.Since(start).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
		for i, p := range probes {
			sent, by, lost := p.Result(500 * time.Millisecond)
			t.Logf("prober %d: sent %d, answers by source %v, lost %d", i, sent, by, lost)
			if by[netlab.NodePublic] != 0 || lost != 0 || by[netlab.GwBPublic] == 0 {
				t.Errorf("prober %d: %d leaked, %d lost, %d via B", i, by[netlab.NodePublic], lost, by[netlab.GwBPublic])
			}
		}
	})

	t.Run("the router is ready and its metrics count the move and each group's traffic", func(t *testing.T) {
		if got := w.Node.Exec(t, "curl", "-sf", "http://127.0.0.1:9403/readyz"); got != "ok" {
			t.Errorf("/readyz: %q", got)
		}
		metrics := map[string]float64{}
		for _, l := range strings.Split(w.Node.Exec(t, "curl", "-sf", "http://127.0.0.1:9402/metrics"), "\n") {
			if f := strings.Fields(l); len(f) == 2 && !strings.HasPrefix(l, "#") {
				v, err := strconv.ParseFloat(f[1], 64)
				if err == nil {
					metrics[f[0]] = v
				}
			}
		}
		for name, atLeast := range map[string]float64{
			"staticroute_gateway_moves_total":                     1, // the failover above
			`staticroute_group_packets_total{group="primary"}`:    100,
			`staticroute_group_bytes_total{group="primary"}`:      100 * 28,
			"staticroute_reconcile_duration_seconds_count":        2,
			"staticroute_last_successful_apply_timestamp_seconds": float64(time.Now().Add(-time.Minute).Unix()),
		} {
			if got, ok := metrics[name]; !ok || got < atLeast {
				t.Errorf("%s = %v (present %t), want at least %v", name, got, ok, atLeast)
			}
		}
		if metrics["staticroute_reconcile_errors_total"] != 0 {
			t.Errorf("staticroute_reconcile_errors_total = %v", metrics["staticroute_reconcile_errors_total"])
		}
	})

	t.Run("kubectl get sr shows the new member Active on the node and the old one Standby", func(t *testing.T) {
		err := framework.Eventually(context.Background(), 15*time.Second, func() error {
			out := cp.MustKubectl(t, nil, "get", "sr", "-o", "wide")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			want := map[string][]string{"primary": {"primary", "198.51.100.4", "Standby", "-"}, "secondary": {"primary", "198.51.100.12", "Active", "1/1"}}
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				if w, ok := want[f[0]]; ok && strings.Join(f[1:5], " ") == strings.Join(w, " ") {
					delete(want, f[0])
				}
			}
			if len(want) > 0 {
				return fmt.Errorf("kubectl get sr -o wide:\n%s", out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl get sr -o wide:\n%s", cp.MustKubectl(t, nil, "get", "sr", "-o", "wide"))
	})

	t.Run("the switch to the new member is one Event on it, from the summarizer with the count, not one per node or resync", func(t *testing.T) {
		events := func() string {
			return cp.MustKubectl(t, nil, "get", "events.events.k8s.io", "-n", "default", "-o",
				"jsonpath={range .items[?(@.regarding.name==\"secondary\")]}{.reportingController} {.reason} {.note}{\"\\n\"}{end}")
		}
		const want = "staticroute-summarizer Active group primary: active, applied on all 1 selected nodes"
		err := framework.Eventually(context.Background(), 10*time.Second, func() error {
			if n := strings.Count(events(), want); n != 1 {
				return fmt.Errorf("%d events:\n%s", n, events())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond) // the reconciles that the switch's own kernel events cause
		if got := events(); strings.Count(got, want) != 1 || strings.Contains(got, "staticroute-node-router") {
			t.Fatalf("2.5 s after the switch, want the summarizer's one Event and none from the node:\n%s", got)
		}
	})

	t.Run("a long-lived TCP connection through the old gateway is reset at failover, and a new one goes via the new gateway", func(t *testing.T) {
		// Documented: the flow's packets leave via the new gateway, whose
		// public address the server has never seen: the server resets it.
		// The router never pins flows to a gateway (it may be dead).
		const port = 7010
		netlab.StartTCPEcho(t, w.Inet, port)
		addr := fmt.Sprintf("%s:%d", netlab.EchoAddr, port)
		conn := netlab.DialTCP(t, w.Node, addr)
		buf := make([]byte, 256)
		ask := func(c net.Conn) (string, error) {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write([]byte("hello")); err != nil {
				return "", err
			}
			k, err := c.Read(buf)
			if err != nil {
				return "", err
			}
			src, _, _ := strings.Cut(string(buf[:k]), " ")
			return src, nil
		}
		if src, err := ask(conn); err != nil || src != netlab.GwBPublic {
			t.Fatalf("before failback: %q %v, want via %s", src, err, netlab.GwBPublic)
		}
		cp.MustKubectl(t, nil, "delete", "staticroute", "secondary") // back to gateway A
		waitAnswer(t, w.Node, netlab.GwAPublic)
		var err error
		for range 5 {
			if _, err = ask(conn); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), "reset") {
			t.Fatalf("the old flow after the gateway changed: %v, want a reset", err)
		}
		fresh := netlab.DialTCP(t, w.Node, addr)
		if src, err := ask(fresh); err != nil || src != netlab.GwAPublic {
			t.Fatalf("a new connection: %q %v, want via %s", src, err, netlab.GwAPublic)
		}
		cp.MustKubectl(t, routeYAML("secondary", "primary", "198.51.100.12", netlab.EchoAddr), "apply", "-f", "-")
		waitAnswer(t, w.Node, netlab.GwBPublic)
	})

	t.Run("failback by deleting the newer member", func(t *testing.T) {
		cp.MustKubectl(t, nil, "delete", "staticroute", "secondary")
		waitAnswer(t, w.Node, netlab.GwAPublic)
	})

	t.Run("with the node state's writes stalled 8 s each, a failover and a failback right after it switch the kernel at once; the node state catches up", func(t *testing.T) {
		_, addr := runNullWebhook(t, env.certDir, "--delay", "8s")
		ca, err := os.ReadFile(filepath.Join(env.certDir, certs.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		cp.MustKubectl(t, []byte(fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: stall-node-states}
webhooks:
- name: stall.staticroute.test
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  timeoutSeconds: 10
  clientConfig: {url: "https://%s/", caBundle: %s}
  rules:
  - {apiGroups: [networking.digitalocean.com], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [staticroutenodestates], scope: Cluster}
`, addr, base64.StdEncoding.EncodeToString(ca))), "apply", "-f", "-")
		unstall := func() {
			cp.Kubectl(context.Background(), nil, "delete", "validatingwebhookconfiguration", "stall-node-states")
		}
		defer unstall()
		// The stall is in force once a node-state write takes 8 s.
		start := time.Now()
		cp.MustKubectl(t, []byte("apiVersion: networking.digitalocean.com/v1\nkind: StaticRouteNodeState\nmetadata: {name: stall-probe}\n"), "create", "--dry-run=server", "-f", "-")
		if took := time.Since(start); took < 7*time.Second {
			t.Fatalf("a node-state write took %s: the stall is not in force", took)
		}
		switched := func(via string) time.Duration {
			t.Helper()
			start := time.Now()
			waitAnswer(t, w.Node, via)
			return time.Since(start)
		}
		cp.MustKubectl(t, routeYAML("secondary", "primary", "198.51.100.12", netlab.EchoAddr), "apply", "-f", "-")
		over := switched(netlab.GwBPublic)
		cp.MustKubectl(t, nil, "delete", "staticroute", "secondary", "--wait=false")
		back := switched(netlab.GwAPublic)
		t.Logf("with node-state writes stalled: failover switched in %s, the failback right after it in %s", over.Round(time.Millisecond), back.Round(time.Millisecond))
		if over > 3*time.Second || back > 3*time.Second {
			t.Errorf("a switch waited for a node-state write: failover %s, failback %s", over, back)
		}
		unstall()
		err = framework.Eventually(context.Background(), 30*time.Second, func() error {
			s := nodeState(t, cp, "node-a")
			if len(s.Status.Groups) != 1 || s.Status.Groups[0].ActiveMember != "primary" || s.Status.Groups[0].State != v1.NodeGroupApplied {
				return fmt.Errorf("node state %+v", s.Status.Groups)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("the node state did not catch up: %v", err)
		}
	})

	t.Run("a deleted steering rule is back within 50 ms (median of 5 deletes), under traffic", func(t *testing.T) {
		p := netlab.StartProber(t, w.Node, time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		var took []time.Duration
		for range 5 {
			steering := func() *netlink.Rule {
				rules, err := w.Node.NL.RuleList(syscall.AF_INET)
				if err != nil {
					t.Fatal(err)
				}
				if i := slices.IndexFunc(rules, func(r netlink.Rule) bool { return r.Priority == 30010 }); i >= 0 {
					return &rules[i]
				}
				return nil
			}
			rule := steering()
			if rule == nil {
				t.Fatal("no steering rule")
			}
			// Deleted from this process, so that the clock starts when the
			// kernel has deleted it.
			w.Node.Must(t, w.Node.NL.RuleDel(rule))
			deleted := time.Now()
			for {
				if steering() != nil {
					break
				}
				if time.Since(deleted) > 5*time.Second {
					t.Fatal("the rule is not back after 5 s")
				}
				time.Sleep(100 * time.Microsecond)
			}
			took = append(took, time.Since(deleted))
			time.Sleep(200 * time.Millisecond)
		}
		sent, by, lost := p.Result(300 * time.Millisecond)
		slices.Sort(took)
		t.Logf("rule back after %v; %d probes, %d leaked, %d lost", took, sent, by[netlab.NodePublic], lost)
		if took[len(took)/2] > 50*time.Millisecond {
			t.Errorf("median repair %s, want ≤ 50 ms: rule events must trigger a reconcile", took[len(took)/2])
		}
	})

	t.Run("a deleted rule and a deleted nft table are repaired", func(t *testing.T) {
		w.Node.IP(t, "rule", "del", "priority", "30010")
		w.Node.Exec(t, "nft", "delete", "table", "inet", "staticroute")
		err := framework.Eventually(context.Background(), 5*time.Second, func() error {
			if !strings.Contains(w.Node.IP(t, "rule"), "30010:") || !strings.Contains(w.Node.Exec(t, "nft", "list", "tables"), "staticroute") {
				return fmt.Errorf("not repaired yet")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		waitAnswer(t, w.Node, netlab.GwAPublic)
	})

	t.Run("another program's edit of our nftables table and a deleted nexthop are repaired within 50 ms (median of 5), not at the resync", func(t *testing.T) {
		p := netlab.StartProber(t, w.Node, time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		// repaired runs break and times, from its return, until ok holds.
		repaired := func(what string, break_ func(), ok func() bool) []time.Duration {
			t.Helper()
			var took []time.Duration
			for range 5 {
				break_()
				broken := time.Now()
				for !ok() {
					if time.Since(broken) > 5*time.Second {
						t.Fatalf("%s: not repaired after 5 s", what)
					}
					time.Sleep(100 * time.Microsecond) // leave the router a core
				}
				took = append(took, time.Since(broken))
				time.Sleep(200 * time.Millisecond)
			}
			slices.Sort(took)
			if took[2] > 50*time.Millisecond {
				t.Errorf("%s: median repair %s (%v), want ≤ 50 ms", what, took[2], took)
			}
			return took
		}
		want := ourRuleset(t, w.Node)
		nft := repaired("our output chain flushed by nft", func() { w.Node.Exec(t, "nft", "flush", "chain", "inet", "staticroute", "output") },
			func() bool { return ourRuleset(t, w.Node) == want })
		// The active group's nexthop: deleting it deletes its routes, and
		// the kernel sends no route event for them.
		var id string
		for _, l := range strings.Split(w.Node.IP(t, "nexthop", "show"), "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[0] == "id" && f[3] == netlab.GwAVPC {
				id = f[1]
			}
		}
		if id == "" {
			t.Fatalf("no nexthop via %s:\n%s", netlab.GwAVPC, w.Node.IP(t, "nexthop", "show"))
		}
		// Meanwhile the lookup meets our unreachable guard (fail closed):
		// an error, not a route.
		steered := func() bool {
			rs, err := w.Node.NL.RouteGet(net.ParseIP(netlab.EchoAddr))
			return err == nil && len(rs) > 0 && rs[0].Gw.String() == netlab.GwAVPC
		}
		nh := repaired("our nexthop deleted", func() { w.Node.IP(t, "nexthop", "del", "id", id) }, steered)
		sent, by, lost := p.Result(300 * time.Millisecond)
		t.Logf("table repaired after %v, nexthop after %v; %d probes, %d leaked, %d lost", nft, nh, sent, by[netlab.NodePublic], lost)
	})

	t.Run("the VPC link down fails closed and is reported; up again restores steering", func(t *testing.T) {
		w.Node.IP(t, "link", "set", "vpc0", "down")
		err := framework.Eventually(context.Background(), 10*time.Second, func() error {
			s := nodeState(t, cp, "node-a")
			if len(s.Status.Groups) != 1 || s.Status.Groups[0].State != v1.NodeGroupGatewayNotOnLink {
				return fmt.Errorf("node state %+v", s.Status.Groups)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := netlab.Answers(t, w.Node); got != "no answer" {
			t.Fatalf("with the VPC link down the echo saw %s", got)
		}
		w.Node.IP(t, "link", "set", "vpc0", "up")
		waitAnswer(t, w.Node, netlab.GwAPublic)
	})

	t.Run("a router killed and restarted under traffic drops and leaks nothing", func(t *testing.T) {
		p := netlab.StartProber(t, w.Node, time.Millisecond)
		time.Sleep(100 * time.Millisecond)
		// Ours, as the kernel holds it: a restart adopts it as it is.
		ours := func() string {
			var lines []string
			for _, l := range strings.Split(w.Node.IP(t, "rule")+w.Node.IP(t, "route", "show", "table", "all"), "\n") {
				if strings.Contains(l, "3001") || strings.Contains(l, "30000") || strings.Contains(l, "proto 146") {
					lines = append(lines, l)
				}
			}
			return strings.Join(lines, "\n")
		}
		before := ours()
		if err := syscall.Kill(router.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		router.Stop()
		time.Sleep(300 * time.Millisecond)
		router = framework.StartRouter(t, kubeconfig, w.Node, args...)
		time.Sleep(2 * time.Second)
		sent, by, lost := p.Result(500 * time.Millisecond)
		t.Logf("sent %d, answers by source %v, lost %d", sent, by, lost)
		if by[netlab.NodePublic] != 0 || lost != 0 {
			t.Fatalf("%d leaked, %d lost", by[netlab.NodePublic], lost)
		}
		if after := ours(); after != before || before == "" {
			t.Errorf("the restarted router did not adopt the kernel as it was:\n%s\nwas\n%s", after, before)
		}
	})

	t.Run("SIGTERM leaves the kernel as it is; --cleanup removes everything of ours", func(t *testing.T) {
		before := w.Node.IP(t, "rule")
		router.Stop()
		if after := w.Node.IP(t, "rule"); after != before {
			t.Fatalf("rules changed on SIGTERM:\n%s\nwas\n%s", after, before)
		}
		waitAnswer(t, w.Node, netlab.GwAPublic)
		out, err := exec.Command("ip", framework.RouterCommand(t, w.Node, "--cleanup")...).CombinedOutput()
		if err != nil {
			t.Fatalf("--cleanup: %v\n%s", err, out)
		}
		rules := w.Node.IP(t, "rule")
		routes := w.Node.IP(t, "route", "show", "table", "all")
		tables := w.Node.Exec(t, "nft", "list", "tables")
		if strings.Contains(rules, "3001") || strings.Contains(rules, "3000") || strings.Contains(routes, "proto 146") || strings.Contains(tables, "staticroute") {
			t.Fatalf("left behind after --cleanup (%s):\n%s\n%s\n%s", out, rules, routes, tables)
		}
		if !strings.Contains(tables, "table ip cni") {
			t.Fatalf("--cleanup removed someone else's table:\n%s", tables)
		}
		if got := netlab.Answers(t, w.Node); got != netlab.NodePublic {
			t.Fatalf("after cleanup the echo saw %s", got)
		}
	})

	t.Run("a node's state goes with its Node (garbage collection)", func(t *testing.T) {
		cp.StartControllerManager(t)
		if s := nodeState(t, cp, "node-a"); s.Name != "node-a" {
			t.Fatal("no node state to begin with")
		}
		cp.MustKubectl(t, nil, "delete", "node", "node-a")
		err := framework.Eventually(context.Background(), 60*time.Second, func() error {
			if out := cp.MustKubectl(t, nil, "get", "staticroutenodestates", "--ignore-not-found", "-o", "name"); out != "" {
				return fmt.Errorf("still there: %s", out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
