package main

import (
	"fmt"
	"os"
	"sync"
)

// runner plays the part of a test for the harness: it keeps the cleanups
// (namespaces, processes) and runs them, newest first, when the demo ends,
// fails or is interrupted.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	once     sync.Once
	verbose  bool
}

// fatal carries a harness failure up to main.
type fatal struct{ msg string }

func (r *runner) Helper() {}

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) Fatal(args ...any) { r.fail(fmt.Sprint(args...)) }

func (r *runner) Fatalf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }

func (r *runner) fail(msg string) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	panic(fatal{msg})
}

func (r *runner) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	fmt.Fprintf(os.Stderr, "  error: "+format+"\n", args...)
}

func (r *runner) Logf(format string, args ...any) {
	if r.verbose {
		fmt.Printf("  · "+format+"\n", args...)
	}
}

func (r *runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *runner) TempDir() string {
	d, err := os.MkdirTemp("", "staticroute-demo-")
	if err != nil {
		r.Fatal(err)
	}
	r.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// teardown runs every cleanup once, newest first.
func (r *runner) teardown() {
	r.once.Do(func() {
		r.mu.Lock()
		cs := r.cleanups
		r.cleanups = nil
		r.mu.Unlock()
		for i := len(cs) - 1; i >= 0; i-- {
			cs[i]()
		}
	})
}
