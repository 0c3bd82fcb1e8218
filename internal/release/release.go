// Package release makes what a user installs: the images (internal/image)
// and one YAML file, config/default with every image named by digest.
package release

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/staticroute/staticroute/internal/image"
)

// koPrefix is how config/ names an image before release: ko's syntax, so
// that `ko resolve` works on it too.
const koPrefix = "ko://github.com/staticroute/staticroute/cmd/"

// Options say what to release.
type Options struct {
	Root     string // the module's root
	Out      string // where dist goes, e.g. Root/dist
	Version  string
	Registry string // e.g. ghcr.io/staticroute: images are REGISTRY/NAME
	Source   string // the repository's URL, for the images' labels
}

// Images are the refs of the images a release built, by name:
// REGISTRY/NAME:VERSION@sha256:….
type Images map[string]string

// BuildImages builds every image for every arch (image.Arches) into
// Out/images/NAME (an OCI layout of one index with the SBOMs, and NAME.tar
// of it) and returns their refs, by the index's digest.
func BuildImages(ctx context.Context, o Options) (Images, error) {
	rev, created, err := commit(o.Root)
	if err != nil {
		return nil, err
	}
	io := image.Options{Root: o.Root, Version: o.Version, Revision: rev, Source: o.Source, Created: created}
	refs := Images{}
	for _, s := range image.Specs() {
		idx, err := image.BuildIndex(ctx, io, s, image.Arches())
		if err != nil {
			return nil, err
		}
		digest, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		if err := image.WriteLayout(filepath.Join(o.Out, "images", s.Name), idx, o.Version); err != nil {
			return nil, err
		}
		refs[s.Name] = fmt.Sprintf("%s/%s:%s@%s", strings.TrimSuffix(o.Registry, "/"), s.Name, o.Version, digest)
	}
	return refs, nil
}

// Render is config/<overlay> as one YAML stream with every ko:// image
// replaced by its ref in images.
func Render(root, overlay string, images Images) ([]byte, error) {
	y, err := Kustomize(root, overlay)
	if err != nil {
		return nil, err
	}
	for name, ref := range images {
		y = bytes.ReplaceAll(y, []byte(koPrefix+name), []byte(ref))
	}
	if i := bytes.Index(y, []byte("ko://")); i >= 0 {
		end := bytes.IndexByte(y[i:], '\n')
		return nil, fmt.Errorf("config/%s names an image that is not built: %s", overlay, y[i:i+max(end, 0)])
	}
	return y, nil
}

// Kustomize is config/overlay as kustomize builds it, images still named
// by ImageName.
func Kustomize(root, overlay string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", overlay))
	if err != nil {
		return nil, fmt.Errorf("kustomize config/%s: %w", overlay, err)
	}
	return m.AsYaml()
}

// ImageName is how config/ names the image of the binary name before a
// release replaces it: ko's syntax.
func ImageName(name string) string { return koPrefix + name }

// file is one of the release's YAML files: the overlay of config/ it
// renders, and the line that heads it.
type file struct{ name, overlay, header string }

func files() []file {
	return []file{
		{"staticroute.yaml", "default", "with cert-manager >= 1.19 and its CRDs installed first"},
		{"staticroute-without-cert-manager.yaml", "without-cert-manager", "where cert-manager is absent: a Job makes the webhook's certificate"},
	}
}

// Write builds the images and writes the release's YAML files into Out.
func Write(ctx context.Context, o Options) (Images, error) {
	images, err := BuildImages(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, f := range files() {
		y, err := Render(o.Root, f.overlay, images)
		if err != nil {
			return nil, err
		}
		header := fmt.Sprintf("# staticroute %s, %s: see docs/install.md\n", o.Version, f.header)
		if err := os.WriteFile(filepath.Join(o.Out, f.name), append([]byte(header), y...), 0o644); err != nil {
			return nil, err
		}
	}
	return images, nil
}

// commit is HEAD's hash and time: the images' revision and creation time,
// so that the same commit gives the same digests.
func commit(root string) (string, time.Time, error) {
	return Commit(root)
}

// Commit is HEAD's hash and time.
func Commit(root string) (string, time.Time, error) {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("reading the commit (git log): %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", time.Time{}, fmt.Errorf("git log printed %q", out)
	}
	sec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return "", time.Time{}, err
	}
	return f[0], time.Unix(sec, 0), nil
}
