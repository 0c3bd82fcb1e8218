package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Two builds of the same commit give the same image digests and the same
// layout archives, byte for byte.
func TestBuildsAreReproducible(t *testing.T) {
	o := Options{Root: moduleRoot(t), Version: "v0.0.0-test", Revision: "0123abc", Source: "https://example.invalid/staticroute", Created: time.Unix(1764460800, 0)}
	for _, s := range Specs() {
		t.Run(s.Name, func(t *testing.T) {
			var digests []string
			var archives [][]byte
			for range 2 {
				img, err := Build(context.Background(), o, s)
				if err != nil {
					t.Fatal(err)
				}
				d, err := img.Digest()
				if err != nil {
					t.Fatal(err)
				}
				digests = append(digests, d.String())
				dir := filepath.Join(t.TempDir(), s.Name)
				if err := WriteLayout(dir, img, o.Version); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(dir + ".tar")
				if err != nil {
					t.Fatal(err)
				}
				archives = append(archives, b)

				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/"+s.Name || cfg.Config.User != s.User ||
					cfg.Config.Labels["org.opencontainers.image.revision"] != o.Revision || cfg.Config.Labels["org.opencontainers.image.version"] != o.Version ||
					cfg.OS != "linux" || !cfg.Created.Time.Equal(o.Created) {
					t.Fatalf("config: %+v", cfg)
				}
				// The binary is there, executable, and nothing else.
				rootfs := t.TempDir()
				if err := Unpack(img, rootfs); err != nil {
					t.Fatal(err)
				}
				entries, err := os.ReadDir(rootfs)
				if err != nil || len(entries) != 1 {
					t.Fatalf("rootfs holds %v (%v), want the binary alone", entries, err)
				}
				if info, err := os.Stat(filepath.Join(rootfs, s.Name)); err != nil || info.Mode()&0o111 == 0 {
					t.Fatalf("the binary: %v %v", info, err)
				}
			}
			if digests[0] != digests[1] {
				t.Errorf("two builds gave %s and %s", digests[0], digests[1])
			}
			if !bytes.Equal(archives[0], archives[1]) {
				t.Error("two builds gave different layout archives")
			}
		})
	}
}
