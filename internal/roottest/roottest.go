// Package roottest gates tests that need root: they skip without it,
// except under CI=true, where a skipped root test would hide a failure.
package roottest

import (
	"os"
	"testing"
)

// Require fails (under CI=true) or skips a test that needs root.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, and CI must run it: run as root")
	}
	t.Skip("needs root")
}
