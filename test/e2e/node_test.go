package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/staticroute/staticroute/internal/image"
	"github.com/staticroute/staticroute/internal/release"
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// nodeImages builds the test nodes' sandbox image as an OCI layout
// archive to import.
func nodeImages(t *testing.T, root string) []framework.NodeImage {
	t.Helper()
	return []framework.NodeImage{testImage(t, root, "pause", framework.PauseImage, "the test nodes' pod sandbox")}
}

// testImage builds the image of the command in test/<name> as an OCI
// layout archive, named ref.
func testImage(t *testing.T, root, name, ref, description string) framework.NodeImage {
	t.Helper()
	idx, err := image.BuildIndex(context.Background(), image.Options{Root: root, Version: "e2e", Created: time.Unix(0, 0)},
		image.Spec{Name: name, Package: "./test/" + name, Description: description}, []string{"amd64"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := image.WriteLayout(dir, idx, ref); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return framework.NodeImage{Archive: dir + ".tar", Name: ref, Digest: d.String()}
}

// killContainer sends SIGKILL to the process of the container whose
// status names containerID (containerd://ID).
func killContainer(t *testing.T, node *framework.Node, containerID string) {
	t.Helper()
	id := strings.TrimPrefix(containerID, "containerd://")
	out, err := node.Ctr("tasks", "list")
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == id {
			fmt.Sscan(f[1], &pid)
		}
	}
	if pid == 0 {
		t.Fatalf("no task %s in:\n%s", id, out)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// realNodeTest is the start of a test with real nodes: root, and a check
// at the very end that the host is as it was before.
func realNodeTest(t *testing.T) string {
	t.Helper()
	framework.RequireRoot(t)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	before := hostState(t)
	t.Cleanup(func() {
		if after := hostState(t); after != before {
			t.Errorf("the host after the nodes:\n%s\nbefore:\n%s", after, before)
		}
	})
	return root
}

// podRange is a real node's pod range: inside the clusters' pod CIDR,
// clear of the world's simulated pod link (198.18.64.0/24).
const podRange = "198.18.96.0/24"

// hostState is what a kubelet may change outside its namespace.
func hostState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, k := range framework.KubeletTunables() {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%s", k, v)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d mounts under srnode-\n", strings.Count(string(mounts), "/srnode-"))
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/srnode-*")
	fmt.Fprintf(&b, "cgroups %v\n", cgroups)
	links, _ := filepath.Glob("/var/log/containers/*")
	fmt.Fprintf(&b, "%d container log links\n", len(links))
	for _, d := range []string{"/run/containerd", "/var/lib/cni"} {
		_, err = os.Stat(d)
		fmt.Fprintf(&b, "%s: %v\n", d, err == nil)
	}
	netns, _ := filepath.Glob("/var/run/netns/cni-*")
	fmt.Fprintf(&b, "pod network namespaces %v\n", netns)
	return b.String()
}

// TestRealNode runs a real kubelet and containerd (runc from Debian) in a
// node's namespace, registered with the API server through the Node
// authorizer: the Node becomes Ready, a host-network Pod runs, a
// container killed with SIGKILL is restarted by the kubelet, and when the
// test ends the host is as it was: the kernel tunables the kubelet set,
// its mounts, cgroups and log links.
func TestRealNode(t *testing.T) {
	root := realNodeTest(t)
	images := nodeImages(t, root)
	cp := framework.StartControlPlane(t, framework.Flag{Name: "authorization-mode", Value: "Node,RBAC"})
	w := netlab.NewWorld(t)
	start := time.Now()
	node := framework.StartNode(t, cp, framework.NodeOptions{Name: "node-1", IP: w.NodeVPC(0), NS: w.Node, PodCIDR: podRange, Images: images})
	t.Logf("containerd and the kubelet on node-1: Ready in %s", time.Since(start).Round(time.Millisecond))

	cp.MustKubectl(t, []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: default}\n"), "apply", "-f", "-")
	cp.MustKubectl(t, []byte(`apiVersion: v1
kind: Pod
metadata: {name: holder, namespace: default}
spec:
  nodeName: node-1
  hostNetwork: true
  automountServiceAccountToken: false
  containers:
  - {name: pause, image: `+framework.PauseImage+`, imagePullPolicy: Never}
`), "apply", "-f", "-")
	status := func() (string, error) {
		r := cp.Kubectl(context.Background(), nil, "get", "pod", "holder", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].containerID}")
		if r.Err != nil {
			return "", fmt.Errorf("%v: %s", r.Err, r.Stderr)
		}
		return r.Stdout, nil
	}
	var running string
	err := framework.Eventually(context.Background(), 60*time.Second, func() error {
		s, err := status()
		if err != nil || !strings.HasPrefix(s, "Running true 0 containerd://") {
			return fmt.Errorf("pod: %q %v", s, err)
		}
		running = s
		return nil
	})
	if err != nil {
		t.Fatalf("the kubelet did not run the pod: %v\n%s", err, cp.MustKubectl(t, nil, "describe", "pod", "holder"))
	}

	// SIGKILL the container's process: the kubelet starts it again.
	killContainer(t, node, strings.Fields(running)[3])
	err = framework.Eventually(context.Background(), 60*time.Second, func() error {
		s, err := status()
		if err != nil || !strings.HasPrefix(s, "Running true 1 ") {
			return fmt.Errorf("pod: %q %v", s, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the kubelet did not restart the killed container: %v", err)
	}
}

// releaseImages builds the release's images of version as OCI layout
// archives to import, and the refs the release file names them by: by
// digest, as make release does.
func releaseImages(t *testing.T, root, version string) (archives []framework.NodeImage, refs release.Images) {
	t.Helper()
	refs = release.Images{}
	for _, s := range image.Specs() {
		idx, err := image.BuildIndex(context.Background(), image.Options{Root: root, Version: version, Created: time.Unix(0, 0)}, s, []string{"amd64"})
		if err != nil {
			t.Fatal(err)
		}
		name := "e2e.test/" + s.Name + ":" + version
		dir := filepath.Join(t.TempDir(), s.Name+"-"+version)
		if err := image.WriteLayout(dir, idx, name); err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, framework.NodeImage{Archive: dir + ".tar", Name: name, Digest: d.String()})
		refs[s.Name] = name + "@" + d.String()
	}
	return archives, refs
}

// realCluster is the release file applied to a cluster of real nodes.
type realCluster struct {
	cp    *framework.ControlPlane
	w     *netlab.World
	nodes []*framework.Node
	refs  release.Images // the installed images
	yaml  []byte         // the applied release file
	// Started is what the cluster took to start (control plane, nodes);
	// Installed, from kubectl apply to the certs Job complete and every
	// router and webhook replica Ready.
	started, installed time.Duration
}

// startRealCluster starts a cluster of n real nodes (kubelet, containerd,
// kube-proxy in nftables mode, the CNI bridge; the controller manager
// and the scheduler; Pod Security baseline enforced on every other
// namespace) with the release's images and extra imported.
func startRealCluster(t *testing.T, root string, n int, archives []framework.NodeImage, refs release.Images) *realCluster {
	t.Helper()
	y, err := release.Render(root, "without-cert-manager", refs)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := &realCluster{w: netlab.NewWorldN(t, n), refs: refs, yaml: y}
	c.cp = framework.StartClusterControlPlane(t, "203.0.113.250", c.w.AddVPCHost(t, "198.51.100.250"))
	c.cp.StartClusterControllers(t)
	archives = append(nodeImages(t, root), archives...)
	for i, ns := range c.w.Nodes {
		c.nodes = append(c.nodes, framework.StartNode(t, c.cp, framework.NodeOptions{Name: fmt.Sprintf("node-%d", i+1), IP: c.w.NodeVPC(i), NS: ns,
			PodCIDR: fmt.Sprintf("198.18.%d.0/24", 96+i), Images: archives}))
	}
	c.started = time.Since(start)
	return c
}

// install applies the release file as docs/install.md says, and waits
// for the certs Job to complete and every router and webhook replica to
// be Ready.
func (c *realCluster) install(t *testing.T) {
	t.Helper()
	c.cp.MustKubectl(t, nil, "create", "namespace", "staticroute-system")
	applied := time.Now()
	c.cp.MustKubectl(t, c.yaml, "apply", "-f", "-")
	c.wait(t, "the certs Job", "wait", "--for=condition=Complete", "job/staticroute-certs", "--timeout=5s")
	c.wait(t, "the node router", "rollout", "status", "ds/staticroute-node-router", "--timeout=5s")
	c.wait(t, "the webhook", "rollout", "status", "deploy/staticroute-webhook", "--timeout=5s")
	c.installed = time.Since(applied)
	t.Logf("the cluster started in %s; kubectl apply → the certs Job complete, the router and both webhook replicas Ready: %s\n%s",
		c.started.Round(100*time.Millisecond), c.installed.Round(100*time.Millisecond),
		c.cp.MustKubectl(t, nil, "-n", "staticroute-system", "get", "pods", "-o", "wide"))
}

// wait runs kubectl with args in staticroute-system until it succeeds,
// for up to two minutes, and fails the test with what the nodes say if
// it does not.
func (c *realCluster) wait(t *testing.T, what string, args ...string) {
	t.Helper()
	err := framework.Eventually(context.Background(), 120*time.Second, func() error {
		r := c.cp.Kubectl(context.Background(), nil, append([]string{"-n", "staticroute-system"}, args...)...)
		if r.Err != nil {
			return fmt.Errorf("%v: %s", r.Err, r.Stderr)
		}
		return nil
	})
	if err != nil {
		var logs strings.Builder
		for _, n := range c.nodes {
			logs.WriteString(n.PodLogs())
		}
		t.Fatalf("%s: %v\n%s\n%s\n%s", what, err, c.cp.MustKubectl(t, nil, "-n", "staticroute-system", "get", "pods,jobs,ds,deploy", "-o", "wide"),
			c.cp.MustKubectl(t, nil, "-n", "staticroute-system", "describe", "pods"), logs.String())
	}
}

// TestReleaseOnRealNodes applies the release file for clusters without
// cert-manager, unchanged, to a cluster of two real nodes (kubelet,
// containerd, kube-proxy in nftables mode, the CNI bridge; the controller
// manager and the scheduler; Pod Security baseline enforced on every
// other namespace): the certs Job completes, both webhook replicas are
// Ready, and each node's router is Running and Ready through its real
// probes, talking to the API server through the kubernetes Service and
// reporting the layout it discovered. A bad StaticRoute is refused and a
// good one admitted through API server → Service → webhook pod. A killed
// router is restarted by the kubelet. Uninstalled as docs/install.md
// says, with its clean-up Job, each node's rules, our tables, nexthops,
// nftables table and src_valid_mark are as before install.
func TestReleaseOnRealNodes(t *testing.T) {
	root := realNodeTest(t)
	archives, refs := releaseImages(t, root, "e2e")
	cleanupJob := docsCleanupJob(t, root)
	c := startRealCluster(t, root, 2, archives, refs)
	cp, nodes, node := c.cp, c.nodes, c.nodes[0]
	var kernelBefore []string
	for _, n := range nodes {
		kernelBefore = append(kernelBefore, ourKernelState(t, n.NS))
	}
	// Baseline is enforced where a namespace does not say otherwise: a
	// host-network pod is refused there.
	if r := cp.Kubectl(context.Background(), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: hostnet, namespace: default}\nspec: {hostNetwork: true, containers: [{name: c, image: "+framework.PauseImage+"}]}\n"), "create", "-f", "-"); r.Err == nil || !strings.Contains(r.Stderr, "violates PodSecurity \"baseline:latest\"") {
		t.Fatalf("Pod Security baseline is not enforced: %v\n%s", r.Err, r.Stderr)
	}
	c.install(t)

	// The router found its layout as the release leaves it, from a real
	// kubelet's downward API (status.hostIP), the Node's podCIDRs and the
	// API server's ServiceCIDR, and reports it with its node-bound token.
	const want = `["198.51.100.0/24"] ["198.51.100.0/24","198.18.96.0/23","198.18.255.0/24"]`
	for _, n := range nodes {
		err := framework.Eventually(context.Background(), 30*time.Second, func() error {
			got := cp.MustKubectl(t, nil, "get", "staticroutenodestate", n.Name, "-o", "jsonpath={.status.clusterRanges.vpc} {.status.clusterRanges.configured}")
			if got != want {
				return fmt.Errorf("%s", got)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s's state (vpc, configured): %v, want %s", n.Name, err, want)
		}
	}

	// Admission as in a cluster: the API server calls the webhook's
	// Service, at its pods' addresses, through the node.
	if r := cp.Kubectl(context.Background(), routeYAML("bad", "", "192.0.2.1", netlab.EchoAddr), "apply", "--dry-run=server", "-f", "-"); r.Err == nil || !strings.Contains(r.Stderr, "is outside the VPC (198.51.100.0/24)") {
		t.Errorf("a gateway outside the VPC, through the webhook's Service: %v\n%s", r.Err, r.Stderr)
	}
	if r := cp.Kubectl(context.Background(), routeYAML("good", "", netlab.GwAVPC, netlab.EchoAddr), "apply", "-f", "-"); r.Err != nil {
		t.Errorf("a good route, through the webhook's Service: %v\n%s", r.Err, r.Stderr)
	}

	// The router's container killed: the kubelet starts it again, and its
	// probes make it Ready.
	id := cp.MustKubectl(t, nil, "-n", "staticroute-system", "get", "pods", "-l", "app.kubernetes.io/name=staticroute-node-router", "--field-selector", "spec.nodeName=node-1", "-o", "jsonpath={.items[0].status.containerStatuses[0].containerID}")
	killContainer(t, node, id)
	err := framework.Eventually(context.Background(), 60*time.Second, func() error {
		got := cp.MustKubectl(t, nil, "-n", "staticroute-system", "get", "pods", "-l", "app.kubernetes.io/name=staticroute-node-router", "--field-selector", "spec.nodeName=node-1", "-o", "jsonpath={.items[0].status.containerStatuses[0].restartCount} {.items[0].status.containerStatuses[0].ready}")
		if got != "1 true" {
			return fmt.Errorf("restarts, ready: %s", got)
		}
		return nil
	})
	if err != nil {
		t.Errorf("the killed router: %v\n%s", err, node.PodLogs())
	}

	// Uninstall as docs/install.md says, with its clean-up Job: each
	// node's rules, tables, nftables and src_valid_mark as before.
	if got := ourKernelState(t, node.NS); got == kernelBefore[0] {
		t.Fatalf("the installed router left no trace to clean up:\n%s", got)
	}
	cp.MustKubectl(t, nil, "delete", "staticroutes", "--all")
	cp.MustKubectl(t, nil, "-n", "staticroute-system", "delete", "daemonset", "staticroute-node-router", "--cascade=foreground")
	for _, n := range nodes {
		job := strings.NewReplacer("NODE", n.Name, "IMAGE", refs["node-router"]).Replace(cleanupJob)
		cp.MustKubectl(t, []byte(job), "apply", "-f", "-")
	}
	c.wait(t, "the clean-up Jobs", "wait", "--for=condition=Complete", "job", "-l", "app.kubernetes.io/name=staticroute-cleanup", "--timeout=5s")
	cp.MustKubectl(t, c.yaml, "delete", "-f", "-", "--ignore-not-found", "--wait=false")
	for i, n := range nodes {
		if got := ourKernelState(t, n.NS); got != kernelBefore[i] {
			t.Errorf("%s after uninstall:\n%s\nbefore install:\n%s", n.Name, got, kernelBefore[i])
		}
	}
}

// docsCleanupJob is the clean-up Job docs/install.md gives a user.
func docsCleanupJob(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "`cleanup-job.yaml`:\n\n```yaml\n")
	job, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/install.md has no cleanup-job.yaml block")
	}
	return job
}

// ourKernelState is what of a node's kernel a router owns: the rules,
// the routes of its tables, nexthops, its nftables table, and
// src_valid_mark on the links the node had before install (kube-proxy's
// table and the CNI's bridge are not ours).
func ourKernelState(t *testing.T, ns *netlab.NS) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(ns.IP(t, "rule"))
	for _, l := range strings.Split(ns.IP(t, "route", "show", "table", "all"), "\n") {
		if strings.Contains(l, "table 521") || strings.Contains(l, "table 522") {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString(ns.IP(t, "nexthop"))
	for _, l := range strings.Split(ns.Exec(t, "nft", "list", "tables"), "\n") {
		if strings.Contains(l, "staticroute") {
			b.WriteString(l + "\n")
		}
	}
	for _, link := range []string{"all", "default", "lo", "vpc0", "pub0"} {
		fmt.Fprintf(&b, "%s %s", link, ns.Exec(t, "sysctl", "-n", "net.ipv4.conf."+link+".src_valid_mark"))
	}
	return b.String()
}
