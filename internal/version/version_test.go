package version

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	s := String("node-router")
	if !strings.HasPrefix(s, "node-router dev") || !strings.Contains(s, runtime.Version()) {
		t.Errorf("%q: want the name, dev (unstamped) and the Go version", s)
	}
	if f := LDFlag("v0.5.0"); f != "-X github.com/staticroute/staticroute/internal/version.release=v0.5.0" {
		t.Errorf("LDFlag: %s", f)
	}
}

// The linker flag the builds use really stamps the version.
func TestLDFlagStamps(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "printversion")
	build := exec.Command("go", "build", "-ldflags", LDFlag("v9.8.7"), "-o", bin, "./testdata/printversion")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil || !strings.HasPrefix(string(out), "printversion v9.8.7 ") {
		t.Fatalf("%q %v: want the stamped version", out, err)
	}
}
