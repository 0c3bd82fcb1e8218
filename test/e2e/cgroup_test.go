package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpuGroups puts each named set of processes into a CPU cgroup of its own,
// all of equal weight, made under the CPU controller's root and removed
// (its processes moved back to the root first) at cleanup. It models
// machines of their own on this one: the kernel's scheduler shares the
// cores between groups first, then between the processes of a group, so
// 400 routers woken at once weigh as much as one API server, not 400
// times as much. Processes not named stay where they are.
//
// It works on cgroup v1's cpu hierarchy and on a cgroup v2 hierarchy
// whose root has the cpu controller; elsewhere it fails the benchmark,
// which asked for it.
func cpuGroups(b *testing.B, groups map[string][]int) {
	b.Helper()
	root, weightFile, weight, err := cpuCgroupRoot()
	if err != nil {
		b.Fatalf("CPU_GROUPS: %v", err)
	}
	for name, pids := range groups {
		dir := filepath.Join(root, fmt.Sprintf("srtest-%d-%s", os.Getpid(), name))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatalf("CPU_GROUPS: %v", err)
		}
		b.Cleanup(func() {
			for _, pid := range readPids(filepath.Join(dir, "cgroup.procs")) {
				// Gone meanwhile is fine; anything else leaves the
				// directory, and rmdir says so.
				_ = os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
			}
			if err := os.Remove(dir); err != nil {
				b.Errorf("removing the cgroup %s: %v", dir, err)
			}
		})
		if err := os.WriteFile(filepath.Join(dir, weightFile), []byte(weight), 0); err != nil {
			b.Fatalf("CPU_GROUPS: %v", err)
		}
		for _, pid := range pids {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
				b.Fatalf("CPU_GROUPS: moving %d into %s: %v", pid, dir, err)
			}
		}
	}
}

// cpuCgroupRoot finds where CPU cgroups are made, and the file and value
// of a default weight there.
func cpuCgroupRoot() (dir, weightFile, weight string, err error) {
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.shares"); err == nil {
		return "/sys/fs/cgroup/cpu", "cpu.shares", "1024", nil
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		ctl, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
		if err != nil {
			continue
		}
		if !strings.Contains(" "+strings.TrimSpace(string(ctl))+" ", " cpu ") {
			return "", "", "", fmt.Errorf("%s: the cpu controller is not enabled for its children (cgroup.subtree_control: %q)", root, ctl)
		}
		return root, "cpu.weight", "100", nil
	}
	return "", "", "", errors.New("no cgroup v1 cpu hierarchy and no cgroup v2 root with the cpu controller")
}

func readPids(path string) []int {
	raw, _ := os.ReadFile(path)
	var out []int
	for _, f := range strings.Fields(string(raw)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
