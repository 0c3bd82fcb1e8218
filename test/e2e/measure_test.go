package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// quantileMs is the q-quantile of sorted durations, in milliseconds.
func quantileMs(sorted []time.Duration, q float64) float64 {
	return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
}

func millis(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Milliseconds()
	}
	return out
}

// procStat reads /proc/<pid>/stat: the command's name (in parentheses
// there, and it may hold spaces) and the fields after it, from the state.
func procStat(path string) (comm string, fields []string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	s := string(raw)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", nil, fmt.Errorf("%s: no command name in %q", path, s)
	}
	return s[open+1 : end], strings.Fields(s[end+1:]), nil
}

// processCPU is the CPU time process pid (all its threads, those gone
// too) has used so far, as the scheduler measures it: the process's
// CLOCK_PROCESS_CPUTIME_ID, read from outside (clock_getcpuclockid's
// encoding of a pid). /proc/<pid>/stat's utime and stime are clock ticks
// (4 ms here) charged to whichever task a tick finds running: a router that
// runs for half a millisecond now and then is charged 4 ms or nothing.
func processCPU(b *testing.B, pid int) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^uint32(pid)<<3|2), &ts); err != nil { // CPUCLOCK_SCHED of the process
		b.Fatalf("the CPU clock of process %d: %v", pid, err)
	}
	return time.Duration(ts.Nano())
}

// processTimes is the CPU time process pid has used so far in user space
// and in the kernel (which includes any softirq work the kernel charged
// to it), in clock ticks: good for a share, not for a total (see
// processCPU).
func processTimes(b *testing.B, pid int) (user, sys time.Duration) {
	_, f, err := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// utime and stime are the 12th and 13th fields after the name, in
	// clock ticks (100 a second).
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond
}

// cpuSince starts measuring the CPU time of pids; the function it returns
// gives what each has used since.
func cpuSince(b *testing.B, pids ...int) func() []time.Duration {
	before := make([]time.Duration, len(pids))
	for i, pid := range pids {
		before[i] = processCPU(b, pid)
	}
	return func() []time.Duration {
		used := make([]time.Duration, len(pids))
		for i, pid := range pids {
			used[i] = processCPU(b, pid) - before[i]
		}
		return used
	}
}

// childPid is the pid of this process's child named comm (as /proc shows
// it, at most 15 bytes): envtest starts kube-apiserver and etcd as
// children and does not tell their pids.
func childPid(b *testing.B, comm string) int {
	b.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		b.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	for _, path := range stats {
		name, f, err := procStat(path)
		if err != nil || name != comm || len(f) < 2 || f[1] != self { // f[1]: the parent's pid
			continue // not it, or gone meanwhile
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			b.Fatal(err)
		}
		return pid
	}
	b.Fatalf("no child process %s", comm)
	return 0
}
