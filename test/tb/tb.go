// Package tb is the part of testing.TB that the test harness (framework,
// netlab) needs, so that the demo program can drive the same harness as the
// tests: *testing.T and *testing.B satisfy it, and so does the demo's own
// runner.
package tb

// T is what the harness calls on a test (or on the demo).
type T interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	TempDir() string
}
