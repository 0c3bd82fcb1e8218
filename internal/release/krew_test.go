package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestPluginTarballIsReproducibleAndHoldsWhatKrewInstalls(t *testing.T) {
	when := time.Unix(1_700_000_000, 0)
	a, err := PluginTarball([]byte("binary"), []byte("license"), when)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PluginTarball([]byte("binary"), []byte("license"), when)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same binary gave two different archives")
	}
	gz, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header records name %q, time %v", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got[h.Name] = string(body)
		want := int64(0o644)
		if h.Name == "kubectl-staticroute" {
			want = 0o755
		}
		if h.Mode != want || !h.ModTime.Equal(when) || h.Uid != 0 {
			t.Errorf("%s: mode %o, time %v, uid %d", h.Name, h.Mode, h.ModTime, h.Uid)
		}
	}
	if got["kubectl-staticroute"] != "binary" || got["LICENSE"] != "license" || len(got) != 2 {
		t.Errorf("archive holds %v", got)
	}
}

func TestKrewManifest(t *testing.T) {
	var archives []PluginArchive
	for _, p := range PluginPlatforms() {
		sum := sha256.Sum256([]byte(p.OS + p.Arch))
		archives = append(archives, PluginArchive{Platform: p, Name: ArchiveName("v0.6.0", p), SHA256: hex.EncodeToString(sum[:])})
	}
	y, err := KrewManifest("v0.6.0", "https://github.com/staticroute/staticroute", "https://github.com/staticroute/staticroute/releases/download/v0.6.0/", archives)
	if err != nil {
		t.Fatal(err)
	}
	var m krewPlugin
	if err := yaml.UnmarshalStrict(y, &m); err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	// krew-index's rules: the kind and version, a name that is the
	// file's, a semantic version, one platform per os/arch, each with an
	// https archive, its sha256, and a bin that a file operation brings.
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "staticroute" || m.Spec.Version != "v0.6.0" {
		t.Errorf("header %+v %+v", m.Metadata, m.Spec.Version)
	}
	if m.Spec.ShortDescription == "" || len(m.Spec.ShortDescription) > 50 || m.Spec.Description == "" || m.Spec.Homepage == "" {
		t.Errorf("descriptions: %q (krew-index wants ≤ 50 characters), %q, homepage %q", m.Spec.ShortDescription, m.Spec.Description, m.Spec.Homepage)
	}
	seen := map[string]bool{}
	for i, p := range m.Spec.Platforms {
		key := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
		a := archives[i]
		if seen[key] || key != a.OS+"/"+a.Arch {
			t.Errorf("platform %d selects %s", i, key)
		}
		seen[key] = true
		if p.URI != "https://github.com/staticroute/staticroute/releases/download/v0.6.0/"+a.Name || p.SHA256 != a.SHA256 {
			t.Errorf("%s: uri %s sha256 %s", key, p.URI, p.SHA256)
		}
		if p.Bin != "kubectl-staticroute" || len(p.Files) == 0 || p.Files[0].From != p.Bin {
			t.Errorf("%s: bin %q from %+v", key, p.Bin, p.Files)
		}
	}
	if len(seen) != 4 {
		t.Errorf("%d platforms", len(seen))
	}
	for _, bad := range []struct{ ver, url, want string }{
		{"dev", "https://x/", "semantic version"},
		{"v0.6.0", "http://x/", "https"},
	} {
		if _, err := KrewManifest(bad.ver, "https://h", bad.url, archives); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("version %q url %q: %v", bad.ver, bad.url, err)
		}
	}
}
