// Package roottest gates tests that need root: they skip without it,
// except under CI=true, where a skipped root test would hide a failure.
package roottest

import (
	"os"
)

// T is the part of testing.TB Require needs.
type T interface {
	Helper()
	Fatal(args ...any)
	Skip(args ...any)
}

// Require fails (under CI=true) or skips a test that needs root.
func Require(t T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, and CI must run it: run as root")
	}
	t.Skip("needs root")
}
