package chart

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/staticroute/staticroute/internal/release"
)

// Release is what a packaged chart names: its version, and the images it
// installs.
type Release struct {
	Version  string // vX.Y.Z: the chart's version X.Y.Z and appVersion vX.Y.Z
	Registry string
	// Digests by image.digests key (webhook, nodeRouter, certs).
	Digests map[string]string
	Created time.Time // the files' time in the archive: the commit's
}

// semver matches a release's version, vX.Y.Z[-pre], and captures the
// chart's version in it.
func semver(v string) []string {
	return regexp.MustCompile(`^v(\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)$`).FindStringSubmatch(v)
}

// PackageName is the archive's name for version v, and whether v is a
// semantic version (only those are packaged: Helm requires one).
func PackageName(v string) (string, bool) {
	m := semver(v)
	if m == nil {
		return "", false
	}
	return "staticroute-" + m[1] + ".tgz", true
}

// Package is the chart under root as helm package writes it (a gzipped
// tar of staticroute/…), with r's version in Chart.yaml and its registry
// and digests in values.yaml. The same inputs give the same bytes. Helm's
// own packager (chartutil.Save) would pull the helm SDK and the k8s.io
// modules it pins into our go.mod: the format is a tarball, written here.
func Package(root string, r Release) ([]byte, error) {
	m := semver(r.Version)
	if m == nil {
		return nil, fmt.Errorf("chart version %q: a chart needs a semantic version such as v1.2.3", r.Version)
	}
	dir := filepath.Join(root, Dir)
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		return nil, err
	}
	if files["Chart.yaml"], err = setLines(files["Chart.yaml"], map[string]string{
		"version: ": "version: " + m[1], "appVersion: ": "appVersion: " + r.Version,
	}); err != nil {
		return nil, fmt.Errorf("the chart's Chart.yaml: %w", err)
	}
	values := map[string]string{"  registry: ": "  registry: " + r.Registry}
	for _, k := range []string{"webhook", "nodeRouter", "certs"} {
		if d := r.Digests[k]; d != "" {
			values["    "+k+`: ""`] = fmt.Sprintf("    %s: %q", k, d)
		}
	}
	if files["values.yaml"], err = setLines(files["values.yaml"], values); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	return tarball(files, r.Created)
}

// setLines replaces each line that starts with a key of set by its value;
// every key must match exactly one line.
func setLines(b []byte, set map[string]string) ([]byte, error) {
	lines := strings.Split(string(b), "\n")
	for prefix, line := range set {
		n := 0
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				lines[i] = line
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%d lines start with %q, want 1", n, prefix)
		}
	}
	return []byte(strings.Join(lines, "\n")), nil
}

func tarball(files map[string][]byte, created time.Time) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	tf := make([]release.TarFile, len(names))
	for i, n := range names {
		tf[i] = release.TarFile{Name: "staticroute/" + n, Mode: 0o644, Body: files[n]}
	}
	return release.Tarball(tf, created)
}
