package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/staticroute/staticroute/internal/image"
	"github.com/staticroute/staticroute/internal/release"
	"github.com/staticroute/staticroute/pkg/validate"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// releaseWorkloads are the node router's DaemonSet and the webhook's
// Deployment as the release file holds them.
func releaseWorkloads(t *testing.T, root string) (appsv1.DaemonSet, appsv1.Deployment, corev1.ConfigMap) {
	t.Helper()
	y, err := release.Render(root, "default", release.Images{"webhook": "e2e/webhook", "node-router": "e2e/node-router"})
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	var dep appsv1.Deployment
	var layout corev1.ConfigMap
	for _, doc := range bytes.Split(y, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "DaemonSet":
			err = yaml.Unmarshal(doc, &ds)
		case "Deployment":
			err = yaml.Unmarshal(doc, &dep)
		case "ConfigMap":
			err = yaml.Unmarshal(doc, &layout)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if ds.Name == "" || dep.Name == "" || layout.Name != validate.LayoutConfigMap {
		t.Fatal("the release lacks the DaemonSet, the Deployment or the layout's ConfigMap")
	}
	return ds, dep, layout
}

// TestSandboxedRouters runs the release's images under runc: the webhook,
// and the node router on three nodes, each with the OCI spec that containerd's CRI gives the
// DaemonSet's Pod: /proc/sys read-only, only NET_ADMIN, RuntimeDefault
// seccomp, no_new_privs, a read-only root filesystem, the node's network
// namespace, the ServiceAccount token and the downward-API env. It plays
// the demo's failover under traffic, and an inbound client inside a
// steered prefix must be answered: strict rp_filter lets it in only if the
// router could set src_valid_mark, which it cannot through /proc/sys here.
func TestSandboxedRouters(t *testing.T) {
	framework.RequireRoot(t)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{}
	for _, s := range image.Specs() {
		img, err := image.Build(context.Background(), image.Options{Root: root, Version: "e2e", Created: time.Unix(0, 0)}, s)
		if err != nil {
			t.Fatal(err)
		}
		images[s.Name] = img
	}
	img := images["node-router"]
	ds, dep, layout := releaseWorkloads(t, root)
	c := &cluster{cp: framework.StartControlPlane(t)}
	certDir, ca := framework.NewWebhookCerts(t)
	c.cp.Install(t, ca)
	// The webhook's Pod is not on the host network; here it shares the
	// test's namespace, where the API server calls it.
	// The release's ConfigMap staticroute-layout as it ships, setting
	// nothing, mounted as the kubelet would: both workloads read it,
	// neither gets a layout flag, and everything is discovered: the VPC
	// from each node's address, the pod ranges from the Nodes, the
	// Service range from the API server's ServiceCIDR.
	layoutDir := t.TempDir()
	if err := os.Chmod(layoutDir, 0o755); err != nil { // read by the webhook's non-root user
		t.Fatal(err)
	}
	if l, err := validate.ParseLayout([]byte(layout.Data["layout.yaml"])); err != nil || len(l.VPCCIDRs)+len(l.PodCIDRs)+len(l.ServiceCIDRs) != 0 {
		t.Fatalf("the release's layout sets ranges (%+v, %v): a user would have to edit them", l, err)
	}
	if err := framework.ProjectFiles(layoutDir, map[string][]byte{"layout.yaml": []byte(layout.Data["layout.yaml"])}); err != nil {
		t.Fatal(err)
	}
	// The Nodes first, as in a cluster, where the webhook's Pod runs on
	// one: it reads their pod ranges at start.
	for i := range 3 {
		c.cp.MustKubectl(t, []byte(fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata: {name: node-%d}\nspec: {podCIDRs: [%s]}\n", i+1, podCIDR(i))), "create", "-f", "-")
	}
	c.webhook = framework.StartSandboxedWebhook(t, c.cp, certDir, framework.Sandbox{
		Pod: dep.Spec.Template.Spec, Container: "webhook", Image: images["webhook"],
		Env:     map[string]string{"POD_NAMESPACE": "staticroute-system"},
		Volumes: map[string]string{"layout": layoutDir},
	})
	c.w = netlab.NewWorldN(t, 3)
	u, err := url.Parse(c.cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	for i, ns := range c.w.Nodes {
		name := fmt.Sprintf("node-%d", i+1)
		c.names = append(c.names, name)
		c.api = append(c.api, netlab.Forward(t, ns, u.Host, u.Host))
		box := framework.Sandbox{
			Pod: ds.Spec.Template.Spec, Container: "node-router", Image: img,
			NetNS:   "/var/run/netns/" + ns.Name,
			Env:     map[string]string{"NODE_NAME": name, "NODE_IP": c.w.NodeVPC(i), "GOMEMLIMIT": "134217728"},
			Volumes: map[string]string{"layout": layoutDir},
			Token:   framework.RouterToken(t, c.cp, name), CA: string(c.cp.Config.CAData), Namespace: "staticroute-system",
			APIServer: u.Host,
		}
		if i == 0 {
			spec, err := box.Spec("check", "/rootfs")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(spec.Linux.ReadonlyPaths, "/proc/sys") || !slices.Equal(spec.Process.Capabilities.Effective, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}) ||
				spec.Linux.Seccomp == nil || !spec.Process.NoNewPrivileges || !spec.Root.Readonly {
				t.Fatalf("the spec is not a pod's sandbox: read-only %v, caps %v, seccomp %v, no_new_privs %v, read-only root %v",
					spec.Linux.ReadonlyPaths, spec.Process.Capabilities.Effective, spec.Linux.Seccomp != nil, spec.Process.NoNewPrivileges, spec.Root.Readonly)
			}
		}
		c.routers = append(c.routers, framework.RunSandboxed(t, "staticroute-e2e-"+ns.Name, box))
	}

	// An upgrade from the old operator: its route for primary is still in
	// node 1's main table (pyroute2's "DST via GW"), beside one that no
	// StaticRoute names. The release runs the router with
	// --adopt-legacy-routes.
	c.w.Node.IP(t, "route", "add", netlab.EchoAddr, "via", netlab.GwAVPC, "proto", "boot")
	c.w.Node.IP(t, "route", "add", "192.0.2.8", "via", netlab.GwAVPC)

	apply := func(y []byte) { c.cp.MustKubectl(t, y, "apply", "-f", "-") }
	checkDiscoveredLayout(t, c)
	const client = "198.19.5.5" // inside a steered prefix
	apply(routeYAML("primary", "", netlab.GwAVPC, netlab.EchoAddr, "198.19.0.0/16"))
	c.expect(t, all(netlab.GwAPublic))
	checkDiscoveredCarveOuts(t, c)
	err = framework.Eventually(context.Background(), 10*time.Second, func() error {
		main := c.w.Node.IP(t, "route", "show", "table", "main")
		if strings.Contains(main, netlab.EchoAddr+" via") || !strings.Contains(main, "192.0.2.8 via") {
			return fmt.Errorf("main table:\n%s", main)
		}
		if !strings.Contains(c.routers[0].Output(), "removed the old operator's route") {
			return fmt.Errorf("no log of the removal")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the old operator's route for primary, and only it, should go: %v", err)
	}
	// The kernel's and nftables' events reach the router in its sandbox
	// (seccomp, capabilities): another program's edit of our table is
	// undone long before the 30 s resync.
	want := ourRuleset(t, c.w.Node)
	c.w.Node.Exec(t, "nft", "flush", "chain", "inet", "staticroute", "output")
	err = framework.Eventually(context.Background(), 5*time.Second, func() error {
		if ourRuleset(t, c.w.Node) != want {
			return fmt.Errorf("our table is still edited")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the sandboxed router did not undo nft's edit of its table: %v\n%s", err, c.routers[0].Output())
	}

	r := c.probe(t, netlab.GwBPublic, func() { apply(routeYAML("secondary", "primary", netlab.GwBVPC, netlab.EchoAddr, "198.19.0.0/16")) })
	t.Logf("sandboxed routers: apply → last of 3 nodes (and a pod) via B in %s; %d probes, %d leaked, %d lost", r.converged.Round(time.Millisecond), r.sent, r.leaked, r.lost)
	if r.leaked != 0 || r.lost != 0 {
		t.Errorf("%d leaked, %d lost", r.leaked, r.lost)
	}

	c.w.Inet.IP(t, "addr", "add", client+"/32", "dev", "lo")
	node := netlab.NodePublic + ":7008"
	netlab.UDPEcho(t, c.w.Node, node)
	err = framework.Eventually(context.Background(), 10*time.Second, func() error {
		if got := netlab.Ask(t, c.w.Inet, client, node, 20); got != 20 {
			return fmt.Errorf("an inbound client inside a steered prefix got %d/20 answers", got)
		}
		return nil
	})
	if err != nil {
		for _, p := range c.routers {
			t.Log(p.Output())
		}
		t.Fatal(err)
	}

	// Health checks in the pod's sandbox: ICMP from a raw socket under the
	// runtime's seccomp profile, each probe marked to its gateway.
	apply(checkedRouteYAML("primary", "", netlab.GwAVPC, netlab.EchoAddr, netlab.EchoAddr, "198.19.0.0/16"))
	apply(checkedRouteYAML("secondary", "primary", netlab.GwBVPC, netlab.EchoAddr, netlab.EchoAddr, "198.19.0.0/16"))
	time.Sleep(time.Second) // the probes start
	p := c.w.StartProbers(t, time.Millisecond)
	failed := time.Now()
	c.w.GwB.IP(t, "link", "set", "vpc", "down")
	d := switched(t, p, nil, netlab.GwAPublic, failed)
	c.w.GwB.IP(t, "link", "set", "vpc", "up")
	back := switched(t, p, nil, netlab.GwBPublic, time.Now())
	_, leaked, _ := p.Result()
	t.Logf("sandboxed routers: gateway B dies → every node via A by itself in %s, back in %s; %d leaked", d.Round(time.Millisecond), back.Round(time.Millisecond), leaked)
	if leaked != 0 || d > time.Second {
		t.Errorf("automatic failover in the sandbox: %s, %d leaked", d, leaked)
	}

	// The router's metrics and probes (the DaemonSet's ports) answer on
	// the node itself and from the VPC, where the kubelet and a scraper
	// come from; from the internet, on the node's public address, nothing
	// listens.
	for _, port := range []string{"9402", "9403"} {
		for _, tc := range []struct {
			from *netlab.NS
			addr string
			want bool
		}{
			{c.w.Node, "127.0.0.1", true},
			{c.w.Nodes[1], c.w.NodeVPC(0), true},
			{c.w.Inet, c.w.NodePublic(0), false},
		} {
			path := "/metrics"
			if port == "9403" {
				path = "/readyz"
			}
			status, err := httpGetIn(t, tc.from, "http://"+net.JoinHostPort(tc.addr, port)+path)
			switch {
			case tc.want && (err != nil || status != http.StatusOK):
				t.Errorf("from %s, %s:%s%s: %d %v, want 200", tc.from.Name, tc.addr, port, path, status, err)
			case !tc.want && err == nil:
				t.Errorf("from %s (the internet), %s:%s%s answered %d: the router's ports must not listen on the node's public address", tc.from.Name, tc.addr, port, path, status)
			}
		}
	}
}

// podCIDR is node i's spec.podCIDRs in the sandbox test.
func podCIDR(i int) string { return fmt.Sprintf("198.18.%d.0/24", 64+i) }

// checkDiscoveredLayout checks that every check and carve-out follows
// the discovered layout: the webhook refuses a gateway outside the
// routers' VPC, and destinations in a node's pod range or the API
// server's ServiceCIDR (198.18.255.0/24, the control plane's
// --service-cluster-ip-range); every node state reports the VPC and
// those ranges; and each node's kernel keeps them off the steering
// table.
func checkDiscoveredLayout(t *testing.T, c *cluster) {
	t.Helper()
	refuse := func(name, gw, dest, want string) {
		t.Helper()
		err := framework.Eventually(context.Background(), 20*time.Second, func() error {
			r := c.cp.Kubectl(context.Background(), routeYAML(name, "", gw, dest), "apply", "--dry-run=server", "-f", "-")
			if r.Err == nil || !strings.Contains(r.Stderr, want) {
				return fmt.Errorf("%v\n%s", r.Err, r.Stderr)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("the webhook, on the discovered layout, did not refuse %s with %q: %v", name, want, err)
		}
	}
	// Until the routers have reported the VPC, the webhook refuses as
	// unavailable: the first check waits for that.
	refuse("bad", "192.0.2.1", netlab.EchoAddr, "is outside the VPC (198.51.100.0/24)")
	refuse("to-pods", netlab.GwAVPC, "198.18.65.0/26", "the pod CIDR 198.18.64.0/23")
	refuse("to-services", netlab.GwAVPC, "198.18.255.16/28", "the service CIDR 198.18.255.0/24")
	if r := c.cp.Kubectl(context.Background(), routeYAML("good", "", netlab.GwAVPC, netlab.EchoAddr), "apply", "--dry-run=server", "-f", "-"); r.Err != nil {
		t.Fatalf("a good route refused on the discovered layout: %s", r.Stderr)
	}
	const want = `["198.51.100.0/24"] ["198.51.100.0/24","198.18.64.0/23","198.18.66.0/24","198.18.255.0/24"] `
	for _, name := range c.names {
		err := framework.Eventually(context.Background(), 10*time.Second, func() error {
			out := c.cp.MustKubectl(t, nil, "get", "staticroutenodestate", name, "-o", "jsonpath={.status.clusterRanges.vpc} {.status.clusterRanges.configured} {.status.clusterRanges.mismatches}")
			if out != want {
				return fmt.Errorf("node state: %s", out)
			}
			return nil
		})
		if err != nil {
			t.Errorf("node %s does not report the discovered layout (vpc, configured, mismatches) %s: %v", name, want, err)
		}
	}
}

// checkDiscoveredCarveOuts checks, once a route is applied, that each
// node's steering table throws the discovered ranges back to main.
func checkDiscoveredCarveOuts(t *testing.T, c *cluster) {
	t.Helper()
	for i, name := range c.names {
		routes := c.w.Nodes[i].IP(t, "route", "show", "table", "all", "type", "throw")
		for _, r := range []string{"198.51.100.0/24", "198.18.64.0/23", "198.18.66.0/24", "198.18.255.0/24"} {
			if !strings.Contains(routes, "throw "+r+" ") {
				t.Errorf("node %s: the discovered range %s is not carved out of the steering table:\n%s", name, r, routes)
			}
		}
	}
}

// httpGetIn GETs url from inside ns (the connection dialled on a thread
// in it) and returns the status.
func httpGetIn(t *testing.T, ns *netlab.NS, url string) (int, error) {
	t.Helper()
	tr := &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		var err error
		netlab.InNS(t, ns, func() error {
			conn, err = net.DialTimeout(network, addr, 2*time.Second)
			return nil
		})
		return conn, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
