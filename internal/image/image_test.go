package image

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	spdxjson "github.com/spdx/tools-golang/json"
	"golang.org/x/mod/modfile"
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
				if err := WriteLayout(dir, mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img}), o.Version); err != nil {
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

// A release's image is one index: an image per platform and, for each,
// its SBOM as an artifact about it. Two builds give the same digest, and
// the SBOM names the modules go.mod pins, at their versions.
func TestIndexHasEveryPlatformAndItsSBOM(t *testing.T) {
	o := Options{Root: moduleRoot(t), Version: "v0.0.0-test", Revision: "0123abc", Source: "https://example.invalid/staticroute", Created: time.Unix(1764460800, 0)}
	var s Spec
	for _, x := range Specs() {
		if x.Name == "certs" {
			s = x
		}
	}
	var digests []string
	var idx v1.ImageIndex
	for range 2 {
		var err error
		if idx, err = BuildIndex(context.Background(), o, s, Arches()); err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds gave %s and %s", digests[0], digests[1])
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(moduleRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", gomod, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range mf.Require {
		want[r.Mod.Path] = r.Mod.Version
	}
	images := map[string]v1.Hash{} // arch → image digest
	sboms := map[v1.Hash][]byte{}  // the image it is of → SBOM
	for _, d := range m.Manifests {
		switch {
		case d.Platform != nil && d.Platform.OS == "linux":
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil || cfg.Architecture != d.Platform.Architecture {
				t.Fatalf("image for %s has config %+v (%v)", d.Platform.Architecture, cfg, err)
			}
			images[d.Platform.Architecture] = d.Digest
		case d.ArtifactType == SBOMMediaType:
			art, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			am, err := art.Manifest()
			if err != nil || am.Subject == nil || am.Subject.Digest.String() != d.Annotations[refDigestAnnotation] || d.Platform == nil || d.Platform.OS != "unknown" {
				t.Fatalf("SBOM %s: manifest %+v, descriptor %+v (%v)", d.Digest, am, d, err)
			}
			layers, err := art.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("SBOM %s: %d blobs (%v)", d.Digest, len(layers), err)
			}
			rc, err := layers[0].Compressed()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			sboms[am.Subject.Digest] = b
		default:
			t.Errorf("unexpected entry %+v", d)
		}
	}
	if len(images) != len(Arches()) || len(sboms) != len(Arches()) {
		t.Fatalf("%d images and %d SBOMs, want one of each per arch %v", len(images), len(sboms), Arches())
	}
	for arch, d := range images {
		doc, err := spdxjson.Read(bytes.NewReader(sboms[d]))
		if err != nil {
			t.Fatalf("%s: the SBOM is not SPDX JSON: %v", arch, err)
		}
		got := map[string]string{}
		for _, p := range doc.Packages {
			got[p.PackageName] = p.PackageVersion
		}
		for _, path := range []string{"k8s.io/client-go", "k8s.io/apimachinery"} {
			if got[path] != want[path] {
				t.Errorf("%s: SBOM says %s %q, go.mod %q", arch, path, got[path], want[path])
			}
		}
		if got["certs"] != o.Version || !strings.HasPrefix(got["stdlib"], "go1.") {
			t.Errorf("%s: the binary %q, stdlib %q", arch, got["certs"], got["stdlib"])
		}
	}
}
