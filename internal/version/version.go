// Package version is what `--version` prints: the release's version,
// stamped by the build (`-ldflags -X …/internal/version.release=v0.5.0`;
// make build and the images do), and the Go toolchain that built it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// release is set by the linker; a plain `go build` leaves "dev". The one
// package variable of the project: -X can set nothing else.
var release = "dev"

// String is one line: the binary's name, its version, the commit when
// the build recorded one, the Go version and the platform.
func String(binary string) string {
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("%s %s%s (%s, %s/%s)", binary, release, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// LDFlag is the linker flag that stamps v.
func LDFlag(v string) string {
	return "-X github.com/staticroute/staticroute/internal/version.release=" + v
}
