package framework

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/staticroute/staticroute/test/netlab"
	"github.com/staticroute/staticroute/test/tb"
)

// Node is a real Kubernetes node in a network namespace of the test's
// world: containerd (with Debian's runc) and a kubelet. Both are entered
// into the namespace's network only (nsenter --net), not into a mount
// namespace of their own (ip netns exec makes one): they share the host's
// mounts as on a real host, so that what the kubelet mounts for a pod is
// what containerd gives the container.
//
// What a kubelet changes outside its namespace is undone at cleanup, also
// when the test fails: the kernel tunables it sets (recorded first), its
// mounts, cgroups (under a cgroupRoot of the node's own) and the symlinks
// it leaves in /var/log/containers.
type Node struct {
	Name string
	IP   string // the node's address: its InternalIP
	NS   *netlab.NS
	Dir  string
	// CgroupRoot is the node's own cgroup, under which the kubelet puts
	// every pod (cgroupfs driver, cgroup v1: failCgroupV1 is false).
	CgroupRoot string

	Containerd, Kubelet *Process
	cp                  *ControlPlane
	kubeconfig          string // the kubelet's
}

// NodeOptions say what node to start.
type NodeOptions struct {
	Name string
	IP   string // its address in NS, the kubelet's --node-ip
	NS   *netlab.NS
	// PodCIDR is the node's spec.podCIDRs and its CNI bridge's subnet.
	PodCIDR string
	// Images are OCI layout archives to import (ctr images import), as a
	// registry would have served them: their names and digests are kept.
	Images []NodeImage
}

// NodeImage is an OCI layout archive whose index names Name, and whose
// digest is Digest: the image is known by both, as after a pull.
type NodeImage struct {
	Archive, Name, Digest string
}

// PauseImage is the sandbox image of every test node, imported as
// NodeImages builds it.
const PauseImage = "e2e.test/pause:e2e"

// NodeBinaries are the binaries a node runs, built by make tools.
func NodeBinaries() []string {
	return []string{"kubelet", "containerd", "containerd-shim-runc-v2", "ctr", "cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap"}
}

// StartNode starts containerd and a kubelet in o.NS, registered with cp,
// and waits for the Node to be Ready. cp must authorize nodes (the Node
// authorizer: StartControlPlane with NodeAuthorization).
func StartNode(t tb.T, cp *ControlPlane, o NodeOptions) *Node {
	t.Helper()
	for _, b := range NodeBinaries() {
		Bin(t, b)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("runc (Debian's package runc) is not installed")
	}
	dir, err := os.MkdirTemp("", "srnode-"+o.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Name: o.Name, IP: o.IP, NS: o.NS, Dir: dir, CgroupRoot: "/" + filepath.Base(dir), cp: cp}
	holdKernelTunables(t)
	holdContainerLogLinks(t, dir)
	holdHostDirs(t)
	holdPodNetNS(t)
	// Cleanups run last first: the host's state is restored after
	// containerd stopped, and the containers go while it still runs,
	// after the kubelet (which would start them again) stopped.
	t.Cleanup(n.restoreHost(t))
	makeCgroup(t, n.CgroupRoot)
	n.startContainerd(t, o)
	t.Cleanup(func() { n.removeContainers(t) })
	n.startKubelet(t)
	if cp.Advertise != "" {
		n.startKubeProxy(t)
	}
	if cp.Host != nil {
		// The API server calls webhooks at their pods: through the node.
		cp.Host.IP(t, "route", "add", o.PodCIDR, "via", o.IP)
	}
	n.waitReady(t, o.PodCIDR)
	return n
}

// startKubeProxy runs kube-proxy (nftables) in the node's namespace, and
// forwards the API server's advertised address there to it: the
// kubernetes Service's ClusterIP leads to that address, as in a cluster.
func (n *Node) startKubeProxy(t tb.T) {
	t.Helper()
	u, err := url.Parse(n.cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(u.Host, ":")
	n.NS.IP(t, "addr", "add", n.cp.Advertise+"/32", "dev", "lo")
	netlab.Forward(t, n.NS, n.cp.Advertise+":"+port, u.Host)
	config := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: %q}
hostnameOverride: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts answer on every address of the node, its public one too, as
# on a DigitalOcean node (nftables mode's default is the node IP only).
nodePortAddresses: [0.0.0.0/0]
# No host-wide conntrack settings: the table's size is the root
# namespace's.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, n.cp.UserKubeconfig(t, "system:kube-proxy"), n.Name, n.IP)
	must(t, os.WriteFile(n.path("kube-proxy.yaml"), []byte(config), 0o644))
	p := StartCmd(t, n.inNetNS(Bin(t, "kube-proxy"), "--config", n.path("kube-proxy.yaml"), "--v", "2"))
	p.Name = "kube-proxy on " + n.Name
}

func (n *Node) path(p ...string) string { return filepath.Join(append([]string{n.Dir}, p...)...) }

// inNetNS is a command run in the node's network namespace only.
func (n *Node) inNetNS(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + n.NS.Name, "--", bin}, args...)...)
	root, _ := Root()
	// containerd finds its shim on PATH.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"))
	return cmd
}

func (n *Node) startContainerd(t tb.T, o NodeOptions) {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	// Pods egress masqueraded to their node's address, as DOKS's CNI
	// does: the NAT gateways masquerade only VPC sources. The bridge
	// plugin writes that rule with nft (knftables), beside ours.
	cni := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}`, o.PodCIDR, n.path("cni", "ipam"))
	must(t, os.MkdirAll(n.path("cni"), 0o755))
	must(t, os.WriteFile(n.path("cni", "10-e2e.conflist"), []byte(cni), 0o644))
	config := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = %[4]q
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[5]q
[plugins.'io.containerd.cri.v1.runtime']
  # Lowering a process's oom_score_adj (the kubelet asks -998 for a
  # sandbox) takes CAP_SYS_RESOURCE, which this machine's root lacks:
  # keep every container's at or above containerd's.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "runc"
        Root = %[6]q
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%[7]q]
    conf_dir = %[8]q
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, n.path("containerd", "root"), n.path("containerd", "state"), n.Socket(), n.path("containerd", "opt"), PauseImage,
		n.path("runc"), filepath.Join(root, "bin", "cni"), n.path("cni"))
	must(t, os.WriteFile(n.path("containerd.toml"), []byte(config), 0o644))
	n.Containerd = StartCmd(t, n.inNetNS(Bin(t, "containerd"), "--config", n.path("containerd.toml")))
	n.Containerd.Name = "containerd on " + n.Name
	err = Eventually(context.Background(), 30*time.Second, func() error {
		_, err := n.Ctr("version")
		return err
	})
	if err != nil {
		t.Fatalf("containerd on %s did not start: %v\n%s", n.Name, err, n.Containerd.Output())
	}
	for _, img := range o.Images {
		if out, err := n.Ctr("images", "import", "--all-platforms", img.Archive); err != nil {
			t.Fatalf("importing %s into %s: %v\n%s", img.Archive, n.Name, err, out)
		}
		// A pull records the image by digest too; an import does not,
		// and the release names images by digest.
		repo, _, _ := strings.Cut(img.Name, ":")
		if out, err := n.Ctr("images", "tag", "--force", img.Name, repo+"@"+img.Digest); err != nil {
			t.Fatalf("naming %s by digest on %s: %v\n%s", img.Name, n.Name, err, out)
		}
	}
}

// PodLogs are the logs of the node's containers, by file, as the kubelet
// keeps them (kubectl logs would need the API server to reach the
// kubelet).
func (n *Node) PodLogs() string {
	var b strings.Builder
	_ = filepath.WalkDir(n.path("pod-logs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "--- %s\n%s", p, tail(string(c), 30))
		}
		return nil
	})
	return b.String()
}

// Socket is containerd's.
func (n *Node) Socket() string { return n.path("containerd.sock") }

// Ctr runs ctr against the node's containerd, in the CRI's namespace.
func (n *Node) Ctr(args ...string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "bin", "ctr"), append([]string{"--address", n.Socket(), "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

func (n *Node) startKubelet(t tb.T) {
	t.Helper()
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1, which kubelet 1.35+ refuses unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %[1]s
containerRuntimeEndpoint: unix://%[2]s
address: %[3]s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
podLogsDir: %[4]q
localStorageCapacityIsolation: false
evictionHard: {memory.available: 1Mi, nodefs.available: 1%%, imagefs.available: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 5s
resolvConf: ""
clusterDomain: cluster.local
`, n.CgroupRoot, n.Socket(), n.IP, n.path("pod-logs"))
	must(t, os.WriteFile(n.path("kubelet.yaml"), []byte(config), 0o644))
	n.kubeconfig = n.cp.UserKubeconfig(t, "system:node:"+n.Name, "system:nodes")
	u, err := url.Parse(n.cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	netlab.Forward(t, n.NS, u.Host, u.Host)
	n.StartKubelet(t)
}

// StartKubelet starts the node's kubelet (again, after StopKubelet): it
// finds the pods it ran in its root dir and in containerd, as a kubelet
// restarted on a host does.
func (n *Node) StartKubelet(t tb.T) {
	t.Helper()
	n.Kubelet = StartCmd(t, n.inNetNS(Bin(t, "kubelet"),
		"--config", n.path("kubelet.yaml"), "--kubeconfig", n.kubeconfig,
		"--root-dir", n.path("kubelet"), "--cert-dir", n.path("kubelet", "pki"),
		"--hostname-override", n.Name, "--node-ip", n.IP, "--v", "2"))
	n.Kubelet.Name = "kubelet on " + n.Name
}

// StopKubelet stops the node's kubelet; its containers keep running.
func (n *Node) StopKubelet() { n.Kubelet.Stop() }

// waitReady waits for the Node to register, gives it its pod range, and
// waits for it to be Ready.
func (n *Node) waitReady(t tb.T, podCIDR string) {
	t.Helper()
	err := Eventually(context.Background(), 90*time.Second, func() error {
		r := n.cp.Kubectl(context.Background(), nil, "get", "node", n.Name, "-o", "jsonpath={.spec.podCIDRs} {.status.conditions[?(@.type=='Ready')].status}")
		if r.Err != nil {
			return fmt.Errorf("%v: %s", r.Err, r.Stderr)
		}
		if strings.HasPrefix(r.Stdout, " ") {
			if p := n.cp.Kubectl(context.Background(), []byte(`{"spec":{"podCIDRs":["`+podCIDR+`"],"podCIDR":"`+podCIDR+`"}}`), "patch", "node", n.Name, "--patch-file", "/dev/stdin"); p.Err != nil {
				return fmt.Errorf("%v: %s", p.Err, p.Stderr)
			}
		}
		if !strings.HasSuffix(r.Stdout, "True") {
			return fmt.Errorf("node %s: %q", n.Name, r.Stdout)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the kubelet on %s: %v\n%s", n.Name, err, tail(n.Kubelet.Output(), 60))
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

func must(t tb.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// restoreHost undoes, once containerd and the kubelet stopped, what they
// left on the host: processes left in the node's cgroups, mounts under
// the node's folder, the cgroups, the folder.
func (n *Node) restoreHost(t tb.T) func() {
	return func() {
		killCgroup(t, n.CgroupRoot)
		unmountUnder(t, n.Dir)
		removeCgroups(t, n.CgroupRoot)
		if err := os.RemoveAll(n.Dir); err != nil {
			t.Errorf("removing %s: %v", n.Dir, err)
		}
	}
}

// removeContainers kills and deletes every task and container of the
// node's containerd, so that no shim or container process outlives it.
func (n *Node) removeContainers(t tb.T) {
	if n.Kubelet != nil {
		n.Kubelet.Stop()
	}
	out, err := n.Ctr("containers", "list", "--quiet")
	if err != nil {
		t.Errorf("listing %s's containers: %v\n%s", n.Name, err, out)
		return
	}
	for _, id := range strings.Fields(out) {
		_, _ = n.Ctr("tasks", "kill", "--signal", "SIGKILL", id)
	}
	for _, id := range strings.Fields(out) {
		_ = Eventually(context.Background(), 10*time.Second, func() error {
			if out, err := n.Ctr("tasks", "delete", "--force", id); err != nil && !strings.Contains(out, "not found") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		if out, err := n.Ctr("containers", "delete", id); err != nil && !strings.Contains(out, "not found") {
			t.Errorf("deleting container %s on %s: %v\n%s", id, n.Name, err, out)
		}
	}
}

// unmountUnder unmounts every mount point under dir, deepest first.
func unmountUnder(t tb.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("reading the mounts: %v", err)
		return
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL {
			t.Errorf("unmounting %s: %v", p, err)
		}
	}
}

// killCgroup kills what still runs in the node's cgroups (containers
// whose shim is gone): every process there was started for the node.
func killCgroup(t tb.T, root string) {
	procs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/pids", root, "*", "*", "*", "*", "cgroup.procs"))
	more, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/pids", root, "*", "*", "*", "cgroup.procs"))
	for _, f := range append(procs, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(s, &pid); err == nil && pid > 1 {
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
					t.Errorf("killing %d, left in %s: %v", pid, f, err)
				}
			}
		}
	}
}

// makeCgroup makes root in every v1 hierarchy: the kubelet wants its
// cgroupRoot to exist. A new cpuset cgroup has no CPUs or memory nodes
// until given its parent's.
func makeCgroup(t tb.T, root string) {
	t.Helper()
	hierarchies, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hierarchies {
		if h.Name() == "unified" {
			continue
		}
		dir := filepath.Join("/sys/fs/cgroup", h.Name(), root)
		must(t, os.Mkdir(dir, 0o755))
		if h.Name() == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
				must(t, err)
				must(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
			}
		}
	}
}

// removeCgroups removes root and every cgroup under it in each v1
// hierarchy, deepest first: they are empty once the containers are gone.
func removeCgroups(t tb.T, root string) {
	hierarchies, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return
	}
	for _, h := range hierarchies {
		base := filepath.Join("/sys/fs/cgroup", h.Name(), root)
		var dirs []string
		_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			err := Eventually(context.Background(), 3*time.Second, func() error { return os.Remove(d) })
			if err != nil {
				t.Errorf("removing cgroup %s: %v", d, err)
			}
		}
	}
}
