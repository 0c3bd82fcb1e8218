package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/staticroute/staticroute/test/tb"
)

// KubeletTunables are the host-wide kernel settings a kubelet sets at
// start (its setupKernelTunables, protectKernelDefaults off).
func KubeletTunables() []string {
	return []string{
		"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
		"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	}
}

// holdKernelTunables records the kubelet's kernel tunables now and writes
// them back at cleanup, also when the test fails. With several nodes the
// first record is the oldest and its cleanup runs last.
func holdKernelTunables(t tb.T) {
	t.Helper()
	was := map[string]string{}
	for _, k := range KubeletTunables() {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			t.Fatalf("recording %s before a kubelet changes it: %v", k, err)
		}
		was[k] = strings.TrimSpace(string(b))
	}
	t.Cleanup(func() {
		for k, v := range was {
			p := filepath.Join("/proc/sys", k)
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == v {
				continue
			}
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Errorf("restoring %s to %s: %v", k, v, err)
			}
		}
	})
}

// containerLogs is where a kubelet links every container's log: a fixed
// path, outside its root directory.
const containerLogs = "/var/log/containers"

// holdContainerLogLinks removes at cleanup the links the kubelet whose
// pod logs are under dir left in /var/log/containers, and the folder if
// it made it.
func holdContainerLogLinks(t tb.T, dir string) {
	t.Helper()
	_, err := os.Stat(containerLogs)
	existed := err == nil
	t.Cleanup(func() {
		entries, _ := os.ReadDir(containerLogs)
		for _, e := range entries {
			p := filepath.Join(containerLogs, e.Name())
			if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
				if err := os.Remove(p); err != nil {
					t.Errorf("removing the kubelet's link %s: %v", p, err)
				}
			}
		}
		if !existed {
			_ = os.Remove(containerLogs) // only if empty: another node's links may still be there
		}
	})
}

// hostDirs are folders a node's containerd makes outside its own,
// whatever it is told: its runc shims' sockets, and the CNI library's
// cache of results.
func hostDirs() []string { return []string{"/run/containerd", "/var/lib/cni"} }

// holdHostDirs removes at cleanup each of hostDirs that was not there.
func holdHostDirs(t tb.T) {
	t.Helper()
	for _, d := range hostDirs() {
		if _, err := os.Stat(d); err == nil {
			continue
		}
		t.Cleanup(func() {
			if err := os.RemoveAll(d); err != nil {
				t.Errorf("removing %s, made by the nodes' containerd: %v", d, err)
			}
		})
	}
}

// holdPodNetNS deletes at cleanup the pods' network namespaces that
// containerd made (/var/run/netns/cni-…) and did not delete, since the
// node's containers are killed rather than stopped through the CRI.
func holdPodNetNS(t tb.T) {
	t.Helper()
	before := map[string]bool{}
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		before[e.Name()] = true
	}
	t.Cleanup(func() {
		entries, _ := os.ReadDir("/var/run/netns")
		for _, e := range entries {
			if before[e.Name()] || !strings.HasPrefix(e.Name(), "cni-") {
				continue
			}
			if out, err := exec.Command("ip", "netns", "delete", e.Name()).CombinedOutput(); err != nil {
				t.Errorf("deleting a pod's network namespace %s: %v: %s", e.Name(), err, out)
			}
		}
	})
}
