package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/semver"
	"sigs.k8s.io/yaml"

	"github.com/staticroute/staticroute/internal/image"
)

// pluginBinary is the plugin's executable, as kubectl finds it on PATH.
const pluginBinary = "kubectl-staticroute"

// PluginPlatforms are the platforms the plugin is released for: where
// kubectl runs, laptops included.
func PluginPlatforms() []Platform {
	return []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}
}

// Platform is a GOOS and GOARCH.
type Platform struct{ OS, Arch string }

// PluginArchive is one platform's plugin archive, as released.
type PluginArchive struct {
	Platform
	Name   string // kubectl-staticroute_VERSION_OS_ARCH.tar.gz
	SHA256 string
}

// ArchiveName is the file name of a platform's plugin archive.
func ArchiveName(ver string, p Platform) string {
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", pluginBinary, ver, p.OS, p.Arch)
}

// PluginTarball packs the plugin's binary and the LICENSE as krew
// installs them, the same binary giving the same bytes (Tarball).
func PluginTarball(binary, license []byte, modTime time.Time) ([]byte, error) {
	return Tarball([]TarFile{{pluginBinary, 0o755, binary}, {"LICENSE", 0o644, license}}, modTime)
}

// The krew manifest (krew.googlecontainertools.github.com/v1alpha2
// Plugin), as krew-index takes it. krew's own Go types
// (sigs.k8s.io/krew/pkg/index) are not imported: krew's go.mod requires
// k8s.io/client-go v11.0.0+incompatible, which module resolution would
// take over our v0.37.
type krewPlugin struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   krewMeta       `json:"metadata"`
	Spec       krewPluginSpec `json:"spec"`
}

type krewMeta struct {
	Name string `json:"name"`
}

type krewPluginSpec struct {
	Version          string         `json:"version"`
	Homepage         string         `json:"homepage"`
	ShortDescription string         `json:"shortDescription"`
	Description      string         `json:"description"`
	Platforms        []krewPlatform `json:"platforms"`
}

type krewPlatform struct {
	Selector krewSelector `json:"selector"`
	URI      string       `json:"uri"`
	SHA256   string       `json:"sha256"`
	Files    []krewFile   `json:"files"`
	Bin      string       `json:"bin"`
}

type krewSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type krewFile struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// KrewManifest is the plugin's krew manifest for archives published under
// downloadURL (a release's download folder, e.g.
// https://github.com/staticroute/staticroute/releases/download/v0.6.0).
func KrewManifest(ver, homepage, downloadURL string, archives []PluginArchive) ([]byte, error) {
	if !semver.IsValid(ver) {
		return nil, fmt.Errorf("krew: version %q is not a semantic version such as v0.6.0: krew-index takes no other", ver)
	}
	if !strings.HasPrefix(downloadURL, "https://") {
		return nil, fmt.Errorf("krew: the download URL %q must be https", downloadURL)
	}
	p := krewPlugin{
		APIVersion: "krew.googlecontainertools.github.com/v1alpha2",
		Kind:       "Plugin",
		Metadata:   krewMeta{Name: "staticroute"},
		Spec: krewPluginSpec{
			Version:          ver,
			Homepage:         homepage,
			ShortDescription: "Fail egress StaticRoutes over between NAT gateways",
			Description: "Creates a new member of a StaticRoute group on another NAT gateway and\n" +
				"shows each node as it switches (failover), deletes the newest member\n" +
				"(failback), and shows a group's members and what every node routes\n" +
				"(status). Needs staticroute installed in the cluster.\n",
		},
	}
	for _, a := range archives {
		p.Spec.Platforms = append(p.Spec.Platforms, krewPlatform{
			Selector: krewSelector{MatchLabels: map[string]string{"os": a.OS, "arch": a.Arch}},
			URI:      strings.TrimSuffix(downloadURL, "/") + "/" + a.Name,
			SHA256:   a.SHA256,
			Files:    []krewFile{{From: pluginBinary, To: "."}, {From: "LICENSE", To: "."}},
			Bin:      pluginBinary,
		})
	}
	return yaml.Marshal(p)
}

// WritePlugin builds the plugin for every platform into
// Out/plugin/ARCHIVE and, for a semantic version, writes
// Out/krew/staticroute.yaml (its path, or "" when the version is none).
func WritePlugin(ctx context.Context, o Options, downloadURL string) ([]PluginArchive, string, error) {
	_, created, err := commit(o.Root)
	if err != nil {
		return nil, "", err
	}
	license, err := os.ReadFile(filepath.Join(o.Root, "LICENSE"))
	if err != nil {
		return nil, "", err
	}
	for _, d := range []string{"plugin", "krew"} {
		if err := os.MkdirAll(filepath.Join(o.Out, d), 0o755); err != nil {
			return nil, "", err
		}
	}
	var archives []PluginArchive
	for _, p := range PluginPlatforms() {
		body, err := image.GoBuild(ctx, o.Root, o.Version, "./cmd/kubectl-staticroute", p.OS, p.Arch)
		if err != nil {
			return nil, "", err
		}
		tgz, err := PluginTarball(body, license, created)
		if err != nil {
			return nil, "", err
		}
		sum := sha256.Sum256(tgz)
		a := PluginArchive{Platform: p, Name: ArchiveName(o.Version, p), SHA256: hex.EncodeToString(sum[:])}
		if err := os.WriteFile(filepath.Join(o.Out, "plugin", a.Name), tgz, 0o644); err != nil {
			return nil, "", err
		}
		archives = append(archives, a)
	}
	if !semver.IsValid(o.Version) {
		return archives, "", nil
	}
	m, err := KrewManifest(o.Version, o.Source, downloadURL, archives)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(o.Out, "krew", "staticroute.yaml")
	return archives, path, os.WriteFile(path, m, 0o644)
}
