// Package image builds the project's container images without Docker and
// without pulling anything: a static Go binary as the one layer of an
// empty base, in an OCI image (go-containerregistry). The same commit
// gives the same digests: the binary is built with -trimpath and no build
// ID, and every timestamp is the commit's.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/staticroute/staticroute/internal/version"
)

// Spec is one image: a command of this module and the user it runs as.
type Spec struct {
	Name        string // "webhook": the image and the binary
	Package     string // "./cmd/webhook"
	User        string // numeric; empty: root
	Description string
}

// Specs are the images a release ships. The webhook and certs run as a
// numeric non-root user (its Deployment says runAsNonRoot). The node router runs
// as root with every capability dropped but NET_ADMIN: Kubernetes gives a
// non-root process no capabilities (it sets no ambient ones).
func Specs() []Spec {
	return []Spec{
		{Name: "webhook", Package: "./cmd/webhook", User: "65532", Description: "staticroute's validating admission webhook and status summarizer"},
		{Name: "node-router", Package: "./cmd/node-router", Description: "staticroute's node agent: egress routes via NAT gateways, switched atomically"},
		{Name: "certs", Package: "./cmd/certs", User: "65532", Description: "staticroute's webhook certificate where cert-manager is absent (certs rotate)"},
	}
}

// Options are what every image of a release shares.
type Options struct {
	Root     string    // the module's root
	Version  string    // e.g. v0.5.0
	Revision string    // the commit
	Source   string    // the repository's URL
	Created  time.Time // the commit's time
	Arch     string    // GOARCH, default amd64
}

// Build compiles s statically for o.Arch and returns its image.
func Build(ctx context.Context, o Options, s Spec) (v1.Image, error) {
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	body, err := compile(ctx, o, s)
	if err != nil {
		return nil, err
	}
	return FromBinary(o, s, o.Arch, body)
}

// compile builds s's binary for linux/o.Arch.
func compile(ctx context.Context, o Options, s Spec) ([]byte, error) {
	return GoBuild(ctx, o.Root, o.Version, s.Package, "linux", o.Arch)
}

// GoBuild builds pkg of the module at root for goos/goarch, statically
// and reproducibly (-trimpath, no build ID, no VCS stamp; the version by
// ldflags), and returns the binary: what every released binary is.
func GoBuild(ctx context.Context, root, ver, pkg, goos, goarch string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "out")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid= "+version.LDFlag(ver), "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s for %s/%s: %w\n%s", pkg, goos, goarch, err, out)
	}
	return os.ReadFile(bin)
}

// FromBinary makes the image of s around a built binary.
func FromBinary(o Options, s Spec, arch string, binary []byte) (v1.Image, error) {
	created := o.Created.UTC()
	layerTar, err := layerOf("/"+s.Name, binary, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", s.Name, err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "go build " + s.Package, Comment: "static binary"},
	})
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", s.Name, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: created}
	cfg.Config.Entrypoint = []string{"/" + s.Name}
	cfg.Config.User = s.User
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       s.Name,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	return mutate.ConfigFile(img, cfg)
}

// layerOf is a tar holding one executable at path, every field fixed.
func layerOf(path string, body []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: path[1:], Mode: 0o555, Size: int64(len(body)),
		ModTime: mtime, Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(body); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
