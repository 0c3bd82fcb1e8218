package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// cluster is a world of n nodes, each registered as a Node and running the
// real router inside its namespace with its own credentials.
type cluster struct {
	cp      *framework.ControlPlane
	w       *netlab.World
	ca      []byte
	names   []string
	api     []*netlab.Forwarder
	routers []*framework.Process
	rs      *framework.Routers
	webhook *framework.Webhook
}

// startCluster starts a control plane, the webhook and a world of n nodes,
// each with its router, given flags beside the layout's.
func startCluster(t testing.TB, n int, flags ...string) *cluster {
	t.Helper()
	framework.RequireRoot(t)
	c := &cluster{cp: framework.StartControlPlane(t)}
	certDir, ca := framework.NewWebhookCerts(t)
	c.ca = ca
	c.cp.Install(t, ca)
	layout := netlab.PlanFor(n).ClusterFlags()
	c.webhook = framework.StartWebhook(t, c.cp, certDir, layout...)
	c.w = netlab.NewWorldN(t, n)
	// ROUTER_FLAGS adds flags to every router, e.g. -v=1 for benchmarks.
	rs := framework.StartRouters(t, c.cp, c.w, slices.Concat(layout, flags, strings.Fields(os.Getenv("ROUTER_FLAGS")))...)
	c.names, c.api, c.routers, c.rs = rs.Names, rs.API, rs.Procs, rs
	return c
}

// expect waits until node i reaches the echo as want(i).
func (c *cluster) expect(t testing.TB, want func(i int) string) {
	t.Helper()
	err := framework.Eventually(context.Background(), 30*time.Second, func() error {
		for i, ns := range c.w.Nodes {
			if got := netlab.Answers(t, ns); got != want(i) {
				return fmt.Errorf("%s reaches the echo as %s, want %s", c.names[i], got, want(i))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func all(addr string) func(int) string { return func(int) string { return addr } }

// own is what node i reaches the echo as without a route: its own address.
func (c *cluster) own(i int) string { return c.w.NodePublic(i) }

// probed is what the probers saw around one change.
type probed struct {
	sent, leaked, lost int // leaked: answers naming the prober's own node
	// converged is when the last prober first got an answer via the new
	// gateway, after started; slowest is its node (-1: the pod's).
	converged time.Duration
	each      []time.Duration // every node's (and the pod's) own switch
	started   time.Time
	applied   time.Duration // f's own time: kubectl's, until its answer
	slowest   int
}

// probeEvery is how often each prober sends: every millisecond up to 20
// nodes; beyond, 5,000 probes a second in all, and at least 20 a second
// per node (as many as 400 nodes), so that the probers and the test's own
// network do not starve the routers and the API server of the two cores.
func (c *cluster) probeEvery() time.Duration {
	n := len(c.w.Nodes)
	if n <= 20 {
		return time.Millisecond
	}
	return min(50*time.Millisecond, time.Duration(n)*200*time.Microsecond)
}

// probe runs a prober on every node and the pod while f runs.
func (c *cluster) probe(t testing.TB, via string, f func()) probed {
	t.Helper()
	ps := c.w.StartProbers(t, c.probeEvery())
	r := probed{started: time.Now()}
	f()
	r.applied = time.Since(r.started)
	var err error
	if r.converged, r.slowest, err = ps.Switched(nil, via, r.started, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	r.each = ps.Each(via, r.started)
	if r.slowest == len(c.w.Nodes) {
		r.slowest = -1
	}
	time.Sleep(300 * time.Millisecond)
	r.sent, r.leaked, r.lost = ps.Result()
	return r
}

func (c *cluster) reset(t testing.TB) {
	t.Helper()
	c.cp.MustKubectl(t, nil, "delete", "staticroutes", "--all", "--wait=true")
	c.expect(t, c.own)
}

// TestCluster plays the tutorial's stories across ten nodes.
func TestCluster(t *testing.T) {
	c := startCluster(t, 10)
	apply := func(yaml []byte) { c.cp.MustKubectl(t, yaml, "apply", "-f", "-") }
	primary := routeYAML("primary", "", netlab.GwAVPC, netlab.EchoAddr)
	secondary := routeYAML("secondary", "primary", netlab.GwBVPC, netlab.EchoAddr)

	t.Run("failover across ten nodes under traffic: nothing leaks or is lost; the old delete-wait-apply flow leaks", func(t *testing.T) {
		apply(primary)
		c.expect(t, all(netlab.GwAPublic))
		r := c.probe(t, netlab.GwBPublic, func() { apply(secondary) })
		t.Logf("ours: apply → last of 10 nodes (and a pod) via B in %s; %d probes, %d leaked, %d lost", r.converged.Round(time.Millisecond), r.sent, r.leaked, r.lost)
		if r.leaked != 0 || r.lost != 0 {
			t.Errorf("ours: %d leaked, %d lost", r.leaked, r.lost)
		}

		// The old tutorial: delete the route, wait while every node removes
		// it (30-60 s there, 2 s here), apply the standby route.
		c.reset(t)
		apply(primary)
		c.expect(t, all(netlab.GwAPublic))
		oldSecondary := routeYAML("secondary", "", netlab.GwBVPC, netlab.EchoAddr)
		r = c.probe(t, netlab.GwBPublic, func() {
			c.cp.MustKubectl(t, nil, "delete", "staticroute", "primary")
			time.Sleep(2 * time.Second)
			apply(oldSecondary)
		})
		t.Logf("old flow: delete → last node via B in %s; %d probes, %d leaked via the nodes' own addresses (%.0f ms per prober), %d lost",
			r.converged.Round(time.Millisecond), r.sent, r.leaked, float64(r.leaked)/11, r.lost)
		if r.leaked == 0 {
			t.Errorf("the old flow leaked nothing: the probers cannot see leaks")
		}
	})

	t.Run("a nodeSelector routes only labelled nodes; a label change moves a node in or out", func(t *testing.T) {
		c.reset(t)
		for _, n := range c.names[:3] {
			c.cp.MustKubectl(t, nil, "label", "node", n, "pool=egress")
		}
		apply([]byte(fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: egress}
spec:
  destinations: [%q]
  gateway: %q
  nodeSelector: {matchLabels: {pool: egress}}
`, netlab.EchoAddr, netlab.GwAVPC)))
		in := map[int]bool{0: true, 1: true, 2: true}
		sel := func(i int) string {
			if in[i] {
				return netlab.GwAPublic
			}
			return c.own(i)
		}
		c.expect(t, sel)
		c.cp.MustKubectl(t, nil, "label", "node", c.names[3], "pool=egress")
		c.cp.MustKubectl(t, nil, "label", "node", c.names[0], "pool-")
		in[3], in[0] = true, false
		c.expect(t, sel)
	})

	t.Run("two overlapping groups created with the webhook off: every node gives the overlap to the older, both say Conflicted", func(t *testing.T) {
		c.reset(t)
		c.cp.MustKubectl(t, nil, "delete", "validatingwebhookconfiguration", "staticroute-validating")
		apply(routeYAML("alpha", "", netlab.GwAVPC, "192.0.2.0/24"))
		time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
		apply(routeYAML("beta", "", netlab.GwBVPC, netlab.EchoAddr, "198.19.0.0/16"))
		c.cp.Install(t, c.ca)
		c.expect(t, all(netlab.GwAPublic))
		err := framework.Eventually(context.Background(), 15*time.Second, func() error {
			for _, n := range c.names {
				s := nodeState(t, c.cp, n)
				for _, g := range s.Status.Groups {
					if g.Group == "beta" && (g.State != v1.NodeGroupConflicted || strings.Join(g.Prefixes, ",") != "198.19.0.0/16") {
						return fmt.Errorf("%s: beta %s %v", n, g.State, g.Prefixes)
					}
				}
			}
			out := c.cp.MustKubectl(t, nil, "get", "sr", "beta", "-o", "jsonpath={.status.state} {.status.nodes}")
			if out != "Conflicted 10/10" {
				return fmt.Errorf("beta's status: %q", out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("with the API server unreachable for 30 s the kernel stays as it is, the webhook keeps admitting; a failover right after it is back reaches every node within 2 s", func(t *testing.T) {
		c.reset(t)
		apply(primary)
		c.expect(t, all(netlab.GwAPublic))
		before := c.w.Nodes[0].IP(t, "route", "show", "table", "all")
		// Every component loses the API server: the routers and the
		// webhook (its summarizer's lease expires after 10 s).
		c.webhook.API.Pause()
		for _, a := range c.api {
			a.Pause()
		}
		outage := time.Now()
		// The API server itself still calls the webhook, which judges
		// from its cache.
		apply(routeYAML("elsewhere", "", netlab.GwAVPC, "198.19.7.0/24"))
		time.Sleep(30*time.Second - time.Since(outage))
		if after := c.w.Nodes[0].IP(t, "route", "show", "table", "all"); after != before {
			t.Errorf("the kernel changed while the API server was unreachable:\n%s\nwas\n%s", after, before)
		}
		if c.webhook.Exited() {
			t.Fatalf("the webhook exited during the outage:\n%s", c.webhook.Output())
		}
		c.webhook.API.Resume()
		for _, a := range c.api {
			a.Resume()
		}
		back := time.Now()
		bad := c.cp.Kubectl(context.Background(), routeYAML("bad", "", "192.0.2.1", "198.19.8.0/24"), "apply", "-f", "-")
		if bad.Err == nil || !strings.Contains(bad.Stderr, "is outside the VPC") {
			t.Errorf("a gateway outside the VPC right after the outage: %v\n%s", bad.Err, bad.Stderr)
		}
		refused := time.Since(back)
		r := c.probe(t, netlab.GwBPublic, func() { apply(secondary) })
		t.Logf("back → a bad route refused by the webhook in %s; failover → last of %d nodes via B in %s (kubectl %s); %d probes, %d leaked, %d lost",
			refused.Round(time.Millisecond), len(c.names), r.converged.Round(time.Millisecond), r.applied.Round(time.Millisecond), r.sent, r.leaked, r.lost)
		if r.converged > 2*time.Second {
			t.Errorf("the failover applied right after the outage took %s to reach the last node, want ≤ 2 s", r.converged)
		}
		if r.leaked != 0 {
			t.Errorf("%d leaked", r.leaked)
		}
		// The webhook's cache must not refuse on routes that are gone:
		// after an outage client-go's informers took up to 40 s to see
		// deletes, and refused a new group over the freed prefix all that
		// while, naming the deleted routes.
		c.cp.MustKubectl(t, nil, "delete", "staticroute", "primary", "secondary", "--wait=true")
		deleted := time.Now()
		tries := 0
		var last framework.KubectlResult
		err := framework.Eventually(context.Background(), 60*time.Second, func() error {
			tries++
			last = c.cp.Kubectl(context.Background(), routeYAML("newgroup", "", netlab.GwAVPC, netlab.EchoAddr), "create", "-f", "-")
			return last.Err
		})
		admitted := time.Since(deleted)
		t.Logf("primary and secondary deleted → a new group over their prefix admitted in %s (%d tries)", admitted.Round(time.Millisecond), tries)
		if err != nil || admitted > 2*time.Second {
			t.Errorf("a new group over a freed prefix right after the outage was admitted after %s, want ≤ 2 s: %v\n%s", admitted, err, last.Stderr)
		}
		for _, p := range c.routers {
			if !strings.Contains(p.Output(), "lost the API server") || !strings.Contains(p.Output(), "API server reachable again") {
				t.Fatalf("a router did not log losing and regaining the API server:\n%s", p.Output())
			}
		}
		if !strings.Contains(c.webhook.Output(), "lost the summarizer's lease") {
			t.Errorf("the webhook did not say it lost its lease:\n%s", c.webhook.Output())
		}
	})

	t.Run("kubectl staticroute: failover shows every node switching, refuses what the webhook refuses, names a node that did not switch; failback; status", func(t *testing.T) {
		c.reset(t)
		apply(primary)
		c.expect(t, all(netlab.GwAPublic))
		plugin := func(args ...string) (string, error) {
			cmd := exec.Command(framework.Bin(t, "kubectl-staticroute"), append(args, "--kubeconfig", c.cp.Kubeconfig)...)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		out, err := plugin("failover", "primary", "--gateway", netlab.GwBVPC, "--timeout", "30s")
		if err != nil || strings.Count(out, " routes primary-198-51-100-12 via ") != len(c.names) || !strings.Contains(out, "all 10 selected nodes") {
			t.Fatalf("failover: %v\n%s", err, out)
		}
		t.Logf("kubectl staticroute failover:\n%s", out)
		c.expect(t, all(netlab.GwBPublic))
		if out, err := plugin("failover", "primary", "--gateway", "192.0.2.1", "--dry-run=server"); err == nil || !strings.Contains(out, "is outside the VPC") {
			t.Errorf("a gateway outside the VPC: %v\n%s", err, out)
		}
		if out, err := plugin("failover", "nosuch", "--gateway", netlab.GwAVPC); err == nil || !strings.Contains(out, `no StaticRoute in group "nosuch"`) {
			t.Errorf("no such group: %v\n%s", err, out)
		}
		// kubectl's own flags (genericclioptions): impersonation reaches
		// the API server, which refuses a user with no rights.
		if out, err := plugin("status", "primary", "--as", "nobody-at-all", "--request-timeout", "10s"); err == nil || !strings.Contains(out, `User "nobody-at-all" cannot list`) {
			t.Errorf("status --as nobody-at-all: %v\n%s", err, out)
		}
		if out, err := plugin("status", "--context", "no-such-context"); err == nil || !strings.Contains(out, "no-such-context") {
			t.Errorf("status --context no-such-context: %v\n%s", err, out)
		}
		out, err = plugin("status", "primary")
		if err != nil || !strings.Contains(out, "primary-198-51-100-12") || strings.Count(out, "Applied") != len(c.names) || !strings.Contains(out, "Active") || !strings.Contains(out, "Standby") {
			t.Errorf("status: %v\n%s", err, out)
		}
		// Why: what a node does with an address, from its node state.
		out, err = plugin("why", netlab.EchoAddr, "--node", c.names[0])
		if err != nil || !strings.Contains(out, "steered by group primary, member primary-198-51-100-12, via gateway "+netlab.GwBVPC) ||
			!strings.Contains(out, "the route "+netlab.EchoAddr+"/32 via "+netlab.GwBVPC+" in table 5210") || !strings.Contains(out, "ip rule priority 30010") {
			t.Errorf("why the echo: %v\n%s", err, out)
		}
		out, err = plugin("why", "198.51.100.77")
		if err != nil || strings.Count(out, "not steered: no group that selects this node has a destination holding it; it is inside the VPC CIDR 198.51.100.0/24") != len(c.names) {
			t.Errorf("why an address in the VPC, on every node: %v\n%s", err, out)
		}
		t.Logf("kubectl staticroute why:\n%s", out)
		// A node cut off from the API server does not switch: named.
		c.api[3].Pause()
		out, err = plugin("failback", "primary", "--timeout", "3s")
		c.api[3].Resume()
		if err == nil || !strings.Contains(out, "1 of 10 nodes do not report routing primary: "+c.names[3]) {
			t.Errorf("failback with %s cut off: %v\n%s", c.names[3], err, out)
		}
		c.expect(t, all(netlab.GwAPublic))
		// With the webhook down nothing can be checked: said so.
		c.webhook.Stop()
		out, err = plugin("failover", "primary", "--gateway", netlab.GwBVPC, "--dry-run=server")
		c.webhook.Restart(t)
		if err == nil || !strings.Contains(out, "the staticroute webhook does not answer") {
			t.Errorf("failover with the webhook down: %v\n%s", err, out)
		}
	})

	t.Run("deleting every StaticRoute frees every node; uninstalling leaves nothing behind", func(t *testing.T) {
		c.reset(t)
		for i, ns := range c.w.Nodes {
			if on := strings.TrimSpace(ns.Exec(t, "sysctl", "-n", "net.ipv4.conf.pub0.src_valid_mark")); on != "1" {
				t.Errorf("%s: the router left src_valid_mark %s on pub0, want 1", c.names[i], on)
			}
			c.routers[i].Stop()
			if out, err := exec.Command("ip", framework.RouterCommand(t, ns, "--cleanup")...).CombinedOutput(); err != nil {
				t.Fatalf("--cleanup on %s: %v\n%s", c.names[i], err, out)
			}
			rules := ns.IP(t, "rule")
			routes := ns.IP(t, "route", "show", "table", "all")
			nexthops := ns.IP(t, "nexthop")
			tables := ns.Exec(t, "nft", "list", "tables")
			if strings.Contains(rules, "30010") || strings.Contains(rules, "30000") || strings.Contains(routes, "proto 146") || nexthops != "" || strings.Contains(tables, "staticroute") {
				t.Errorf("%s keeps:\n%s%s%s%s", c.names[i], rules, routes, nexthops, tables)
			}
			// The router turned src_valid_mark on for each link (the
			// world leaves it off); it is off again everywhere.
			if marks := ns.Exec(t, "sysctl", "-a", "--pattern", `net\.ipv4\.conf\..*\.src_valid_mark`); strings.Contains(marks, "= 1") {
				t.Errorf("%s keeps src_valid_mark on:\n%s", c.names[i], marks)
			}
		}
	})
}
