package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = string(c)
	}
}

func TestPackageNamesTheReleasesVersionAndImages(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	r := Release{Version: "v1.2.3-rc.1", Registry: "registry.example/sr", Digests: map[string]string{"webhook": "sha256:aa", "nodeRouter": "sha256:bb", "certs": "sha256:cc"}, Created: time.Unix(1700000000, 0)}
	b, err := Package(root, r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Package(root, r)
	if err != nil || !bytes.Equal(b, again) {
		t.Errorf("two packages of the same release differ (%v)", err)
	}
	files := untar(t, b)
	for _, want := range []string{"version: 1.2.3-rc.1\n", "appVersion: v1.2.3-rc.1\n"} {
		if !strings.Contains(files["staticroute/Chart.yaml"], want) {
			t.Errorf("Chart.yaml lacks %q:\n%s", want, files["staticroute/Chart.yaml"])
		}
	}
	for _, want := range []string{"  registry: registry.example/sr\n", `    webhook: "sha256:aa"`, `    nodeRouter: "sha256:bb"`, `    certs: "sha256:cc"`} {
		if !strings.Contains(files["staticroute/values.yaml"], want) {
			t.Errorf("values.yaml lacks %q", want)
		}
	}
	for _, f := range []string{"staticroute/templates/staticroute.yaml", "staticroute/templates/_helpers.tpl"} {
		if files[f] == "" {
			t.Errorf("the package lacks %s", f)
		}
	}
	if name, ok := PackageName(r.Version); !ok || name != "staticroute-1.2.3-rc.1.tgz" {
		t.Errorf("PackageName = %q, %v", name, ok)
	}
	for _, v := range []string{"dev", "7b32f35-dirty", "1.2.3"} {
		if _, ok := PackageName(v); ok {
			t.Errorf("%q packaged", v)
		}
		if _, err := Package(root, Release{Version: v}); err == nil || !strings.Contains(err.Error(), "semantic version") {
			t.Errorf("%q: %v", v, err)
		}
	}
}
