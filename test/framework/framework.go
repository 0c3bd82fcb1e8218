// Package framework starts the real parts end-to-end tests and the demo run
// on: kube-apiserver and etcd built from the Go module proxy into ./bin, the
// kubectl built beside them, and the project's own binaries.
package framework

import (
	"github.com/staticroute/staticroute/test/tb"

	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/staticroute/staticroute/internal/roottest"
)

// Root is the repository's top folder (the one holding go.mod).
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "api")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Bin returns the path of a binary in ./bin and fails the test if it is not
// built: `make tools build` builds them all.
func Bin(t tb.T, name string) string {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built: run `make tools build` (%v)", p, err)
	}
	return p
}

// Process is a binary the test started; Stop ends it by its PID.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *lockedWriter
}

// Start runs a binary in the background, logging its output into the test
// log when the test fails, and stops it at cleanup.
func Start(t tb.T, name string, args ...string) *Process {
	t.Helper()
	return StartCmd(t, exec.Command(name, args...))
}

// StartCmd is Start for a command the caller built (its environment, its
// folder); its output goes to the Process.
func StartCmd(t tb.T, cmd *exec.Cmd) *Process {
	t.Helper()
	name := cmd.Path
	p := &Process{Name: filepath.Base(name), done: make(chan struct{}), log: &lockedWriter{buf: &bytes.Buffer{}}}
	p.cmd = cmd
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s (pid %d):\n%s", p.Name, p.cmd.Process.Pid, p.log.String())
		}
	})
	return p
}

// Stop sends SIGTERM to the process, then SIGKILL after 10 s.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to end and returns how it
// ended (nil: exit status 0).
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still runs after %s", p.Name, timeout)
	}
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is what the process printed so far.
func (p *Process) Output() string { return p.log.String() }

// Eventually polls f until it returns nil or the deadline passes.
func Eventually(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RequireRoot fails (under CI=true) or skips a test that needs root.
func RequireRoot(t testing.TB) { roottest.Require(t) }
