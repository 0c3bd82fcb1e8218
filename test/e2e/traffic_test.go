package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// echoImage is the test nodes' workload image (test/podecho).
const echoImage = "e2e.test/podecho:e2e"

// scenario is what the probers counted while one thing happened.
type scenario struct {
	name               string
	sent, leaked, lost int
	took               time.Duration
}

// TestRealNodesUnderTraffic runs the release on two real nodes under
// 1,000 probes a second from each node and from a real pod (the CNI
// bridge, masqueraded by its node), through everything a cluster does to
// a network agent, and counts each scenario's leaked probes (answered
// via a node's own address) and lost ones (never answered):
//
//   - failover from gateway A to B (a new StaticRoute in the group);
//   - a NodePort Service answering a client inside a steered prefix;
//   - the router's DaemonSet rolled from v1 to v2 (another VERSION of the
//     same commit) with the release's maxUnavailable: each node's kernel
//     is identical before and after;
//   - the webhook's Deployment rolled while creates run in a loop: none
//     refused for lack of a webhook;
//   - a router container killed with SIGKILL and restarted by the
//     kubelet;
//   - kubectl drain of a node: the router stays, a webhook replica stays
//     (the PodDisruptionBudget);
//   - a kubelet stopped for 60 s and started again.
func TestRealNodesUnderTraffic(t *testing.T) {
	root := realNodeTest(t)
	v1Images, v1Refs := releaseImages(t, root, "e2e")
	v2Images, v2Refs := releaseImages(t, root, "e2e-v2")
	echo := testImage(t, root, "podecho", echoImage, "the test nodes' workload: a UDP echo")
	c := startRealCluster(t, root, 2, append(append(v1Images, v2Images...), echo), v1Refs)
	c.install(t)
	cp, w := c.cp, c.w

	pod := c.startEchoPod(t)
	from := []netlab.ProbeFrom{{NS: w.Nodes[0], Own: w.NodePublic(0)}, {NS: w.Nodes[1], Own: w.NodePublic(1)}, {NS: pod, Own: w.NodePublic(0)}}
	var results []scenario
	run := func(name, via string, f func()) {
		t.Helper()
		ps := netlab.StartProbersFrom(t, time.Millisecond, from...)
		start := time.Now()
		f()
		s := scenario{name: name, took: time.Since(start)}
		if via != "" {
			if _, _, err := ps.Switched(nil, via, start, 30*time.Second); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		s.sent, s.leaked, s.lost = ps.Result()
		t.Logf("%s (%s): %d probes, %d leaked, %d lost", name, s.took.Round(time.Millisecond), s.sent, s.leaked, s.lost)
		if s.leaked != 0 || s.lost != 0 {
			t.Errorf("%s: %d of %d probes leaked, %d lost", name, s.leaked, s.sent, s.lost)
		}
		results = append(results, s)
	}

	// A client inside a steered prefix (198.19.0.0/16) on the internet.
	const client = "198.19.5.5"
	w.Inet.IP(t, "addr", "add", client+"/32", "dev", "lo")
	cp.MustKubectl(t, routeYAML("egress", "", netlab.GwAVPC, netlab.EchoAddr, "198.19.0.0/16"), "apply", "-f", "-")
	for _, p := range from {
		waitAnswer(t, p.NS, netlab.GwAPublic)
	}
	run("failover A → B", netlab.GwBPublic, func() {
		cp.MustKubectl(t, routeYAML("egress-b", "egress", netlab.GwBVPC, netlab.EchoAddr, "198.19.0.0/16"), "apply", "-f", "-")
	})

	// The NodePort's replies leave the way the client's packets came in,
	// not through the gateway the client's prefix is steered to.
	nodePort := w.NodePublic(0) + ":30708"
	if got := netlab.Ask(t, w.Inet, client, nodePort, 20); got != 20 {
		t.Errorf("NodePort from a client inside a steered prefix: %d/20 answered from %s", got, nodePort)
	}

	kernelBefore := c.routerKernels(t)
	run("DaemonSet v1 → v2", "", func() {
		cp.MustKubectl(t, nil, "-n", "staticroute-system", "set", "image", "ds/staticroute-node-router", "node-router="+v2Refs["node-router"])
		c.wait(t, "the router's rollout", "rollout", "status", "ds/staticroute-node-router", "--timeout=5s")
	})
	if got := cp.MustKubectl(t, nil, "-n", "staticroute-system", "get", "pods", "-l", "app.kubernetes.io/name=staticroute-node-router", "-o", "jsonpath={.items[*].spec.containers[0].image}"); got != v2Refs["node-router"]+" "+v2Refs["node-router"] {
		t.Errorf("after the rollout the routers run %s", got)
	}
	if after := c.routerKernels(t); after != kernelBefore {
		t.Errorf("each node's kernel after the rollout:\n%s\nbefore:\n%s", after, kernelBefore)
	}
	t.Logf("the DaemonSet's rollout: %s per node", (results[len(results)-1].took / time.Duration(len(c.nodes))).Round(time.Millisecond))

	run("the webhook rolled while creates run", "", func() {
		admitted, refused, problems := c.createWhile(t, func() {
			cp.MustKubectl(t, nil, "-n", "staticroute-system", "rollout", "restart", "deploy/staticroute-webhook")
			c.wait(t, "the webhook's rollout", "rollout", "status", "deploy/staticroute-webhook", "--timeout=5s")
		})
		t.Logf("creates during the webhook's rollout: %d admitted, %d refused", admitted, refused)
		if refused != 0 || admitted == 0 {
			t.Errorf("creates during the webhook's rollout: %d admitted, %d refused:\n%s", admitted, refused, strings.Join(problems, "\n"))
		}
	})

	restarts := func() string {
		return cp.MustKubectl(t, nil, "-n", "staticroute-system", "get", "pods", "-l", "app.kubernetes.io/name=staticroute-node-router", "--field-selector", "spec.nodeName=node-1",
			"-o", "jsonpath={.items[0].status.containerStatuses[0].restartCount} {.items[0].status.containerStatuses[0].ready} {.items[0].status.containerStatuses[0].containerID}")
	}
	run("a router killed (SIGKILL), restarted by the kubelet", "", func() {
		killContainer(t, c.nodes[0], strings.Fields(restarts())[2])
		err := framework.Eventually(context.Background(), 60*time.Second, func() error {
			if got := restarts(); !strings.HasPrefix(got, "1 true ") {
				return fmt.Errorf("restarts, ready: %s", got)
			}
			return nil
		})
		if err != nil {
			t.Errorf("the killed router: %v\n%s", err, c.nodes[0].PodLogs())
		}
	})

	run("kubectl drain node-2", "", func() {
		cp.MustKubectl(t, nil, "drain", "node-2", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s")
		c.wait(t, "a webhook replica after the drain", "wait", "--for=condition=Available", "deploy/staticroute-webhook", "--timeout=5s")
		if r := cp.Kubectl(context.Background(), routeYAML("after-drain", "", netlab.GwAVPC, "192.0.2.99"), "create", "--dry-run=server", "-f", "-"); r.Err != nil {
			t.Errorf("a create after the drain: %v\n%s", r.Err, r.Stderr)
		}
		if got := cp.MustKubectl(t, nil, "-n", "staticroute-system", "get", "pods", "--field-selector", "spec.nodeName=node-2", "-o", "jsonpath={.items[*].metadata.labels.app\\.kubernetes\\.io/name}"); got != "staticroute-node-router" {
			t.Errorf("on the drained node-2 run %q, want the router alone", got)
		}
		cp.MustKubectl(t, nil, "uncordon", "node-2")
	})

	run("node-1's kubelet stopped for 60 s", "", func() {
		before := restarts()
		c.nodes[0].StopKubelet()
		time.Sleep(60 * time.Second)
		c.nodes[0].StartKubelet(t)
		err := framework.Eventually(context.Background(), 60*time.Second, func() error {
			got := cp.MustKubectl(t, nil, "get", "node", "node-1", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
			if got != "True" {
				return fmt.Errorf("node-1 Ready: %s", got)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if after := restarts(); after != before {
			t.Errorf("the router across the kubelet's restart: %s, before %s", after, before)
		}
	})

	var table strings.Builder
	for _, s := range results {
		fmt.Fprintf(&table, "| %s | %s | %d | %d | %d |\n", s.name, s.took.Round(100*time.Millisecond), s.sent, s.leaked, s.lost)
	}
	t.Logf("scenarios on 2 real nodes, 1,000 probes/s from each node and a pod:\n| scenario | took | probes | leaked | lost |\n|---|---|---|---|---|\n%s", table.String())
}

// startEchoPod runs test/podecho on node-1 behind a NodePort Service
// (UDP 30708), and opens the pod's network namespace, which the CNI made.
func (c *realCluster) startEchoPod(t *testing.T) *netlab.NS {
	t.Helper()
	c.cp.MustKubectl(t, []byte(`apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: default, labels: {app: echo}}
spec:
  nodeSelector: {kubernetes.io/hostname: node-1}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - {name: echo, image: `+echoImage+`, imagePullPolicy: Never}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  type: NodePort
  selector: {app: echo}
  ports:
  - {protocol: UDP, port: 7008, nodePort: 30708}
`), "apply", "-f", "-")
	var ip string
	err := framework.Eventually(context.Background(), 60*time.Second, func() error {
		got := c.cp.MustKubectl(t, nil, "get", "pod", "echo", "-o", "jsonpath={.status.phase} {.status.podIP}")
		phase, addr, _ := strings.Cut(got, " ")
		if phase != "Running" || addr == "" {
			return fmt.Errorf("the echo pod: %q", got)
		}
		ip = addr
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, c.cp.MustKubectl(t, nil, "describe", "pod", "echo"))
	}
	names, err := filepath.Glob("/var/run/netns/cni-*")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range names {
		out, err := exec.Command("ip", "-n", filepath.Base(p), "-o", "-4", "addr", "show").CombinedOutput()
		if err == nil && strings.Contains(string(out), " inet "+ip+"/") {
			return netlab.Open(t, filepath.Base(p))
		}
	}
	t.Fatalf("no network namespace of %v holds the echo pod's %s", names, ip)
	return nil
}

// routerKernels is what the routers own in each node's kernel, without
// counters: the rules, the routes of our tables, nexthops, our nftables
// table, src_valid_mark.
func (c *realCluster) routerKernels(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- %s\n%s%s", n.Name, ourKernelState(t, n.NS), n.NS.Exec(t, "nft", "-s", "list", "table", "inet", "staticroute"))
	}
	return b.String()
}

// createWhile creates StaticRoutes (dry run: admission, no object) from
// four clients in a loop while f runs, about 200 a second in all, and
// counts what was admitted and refused.
func (c *realCluster) createWhile(t *testing.T, f func()) (admitted, refused int64, problems []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok, no atomic.Int64
	var mu sync.Mutex
	cl := c.cp.Client(t)
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r := &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("loop-%d-%d", k, i)}, Spec: v1.StaticRouteSpec{Destinations: []string{"192.0.2.99"}, Gateway: netlab.GwAVPC}}
				// Not ctx: its end would fail a request waiting on the
				// client's rate limiter, a refusal of nobody's.
				switch err := cl.Create(context.Background(), r, client.DryRunAll); {
				case err == nil:
					ok.Add(1)
				case ctx.Err() == nil:
					no.Add(1)
					mu.Lock()
					if len(problems) < 20 {
						problems = append(problems, fmt.Sprintf("%s %v", time.Now().Format("15:04:05.000"), err))
					}
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	f()
	cancel()
	wg.Wait()
	return ok.Load(), no.Load(), problems
}
