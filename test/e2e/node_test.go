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
	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// nodeImages builds the test nodes' sandbox image as an OCI layout
// archive to import.
func nodeImages(t *testing.T, root string) []string {
	t.Helper()
	idx, err := image.BuildIndex(context.Background(), image.Options{Root: root, Version: "e2e", Created: time.Unix(0, 0)},
		image.Spec{Name: "pause", Package: "./test/pause", Description: "the test nodes' pod sandbox"}, []string{"amd64"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pause")
	if err := image.WriteLayout(dir, idx, framework.PauseImage); err != nil {
		t.Fatal(err)
	}
	return []string{dir + ".tar"}
}

// hostState is what a kubelet may change outside its namespace.
func hostState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, k := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"} {
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
	return b.String()
}

// TestRealNode runs a real kubelet and containerd (runc from Debian) in a
// node's namespace, registered with the API server through the Node
// authorizer: the Node becomes Ready, a host-network Pod runs, a
// container killed with SIGKILL is restarted by the kubelet, and when the
// test ends the host is as it was: the kernel tunables the kubelet set,
// its mounts, cgroups and log links.
func TestRealNode(t *testing.T) {
	framework.RequireRoot(t)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	before := hostState(t)
	t.Cleanup(func() {
		if after := hostState(t); after != before {
			t.Errorf("the host after the node:\n%s\nbefore:\n%s", after, before)
		}
	})
	images := nodeImages(t, root)
	cp := framework.StartControlPlane(t, framework.Flag{Name: "authorization-mode", Value: "Node,RBAC"})
	w := netlab.NewWorld(t)
	start := time.Now()
	node := framework.StartNode(t, cp, framework.NodeOptions{Name: "node-1", IP: w.NodeVPC(0), NS: w.Node, PodCIDR: "198.18.64.0/24", Images: images})
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
	err = framework.Eventually(context.Background(), 60*time.Second, func() error {
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
	id := strings.TrimPrefix(strings.Fields(running)[3], "containerd://")
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
