// Command release builds the images (OCI layouts in dist/images, no
// Docker, nothing pulled) and, unless -images-only, dist/staticroute.yaml:
// config/default with the images named by digest. `make images` and
// `make release` run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/staticroute/staticroute/internal/chart"
	"github.com/staticroute/staticroute/internal/release"
)

func main() {
	var o release.Options
	imagesOnly := flag.Bool("images-only", false, "build the images only")
	flag.StringVar(&o.Version, "version", "dev", "the release's version, e.g. v0.5.0")
	flag.StringVar(&o.Registry, "registry", "ghcr.io/staticroute", "where the images will be pushed: they are REGISTRY/NAME")
	flag.StringVar(&o.Source, "source", "https://github.com/staticroute/staticroute", "the repository, for the images' labels")
	flag.StringVar(&o.Out, "out", "dist", "output folder")
	downloadURL := flag.String("download-url", "", "where the plugin's archives will be published, for the krew manifest (default SOURCE/releases/download/VERSION)")
	flag.Parse()
	root, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	o.Root = root
	if o.Out, err = filepath.Abs(o.Out); err != nil {
		fail(err)
	}
	var images release.Images
	if *imagesOnly {
		images, err = release.BuildImages(context.Background(), o)
	} else {
		images, err = release.Write(context.Background(), o)
	}
	if err != nil {
		fail(err)
	}
	names := make([]string, 0, len(images))
	for n := range images {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%s\t%s\t(%s)\n", n, images[n], filepath.Join(o.Out, "images", n))
	}
	if *imagesOnly {
		return
	}
	fmt.Println("wrote", filepath.Join(o.Out, "staticroute.yaml"), "and", filepath.Join(o.Out, "staticroute-without-cert-manager.yaml"))
	if *downloadURL == "" {
		*downloadURL = o.Source + "/releases/download/" + o.Version
	}
	archives, manifest, err := release.WritePlugin(context.Background(), o, *downloadURL)
	if err != nil {
		fail(err)
	}
	for _, a := range archives {
		fmt.Printf("plugin\t%s/%s\t%s\tsha256:%s\n", a.OS, a.Arch, filepath.Join(o.Out, "plugin", a.Name), a.SHA256)
	}
	if manifest == "" {
		fmt.Printf("no krew manifest: -version %s is not a semantic version such as v0.6.0\n", o.Version)
	} else {
		fmt.Println("wrote", manifest, "(archives expected under "+*downloadURL+")")
	}
	if err := writeChart(o, images); err != nil {
		fail(err)
	}
}

// writeChart packages charts/staticroute into OUT/chart with the
// release's version and images by digest; a version that is not
// semantic gets none (Helm requires one).
func writeChart(o release.Options, images release.Images) error {
	name, ok := chart.PackageName(o.Version)
	if !ok {
		fmt.Printf("no chart package: -version %s is not a semantic version such as v0.6.0\n", o.Version)
		return nil
	}
	_, created, err := release.Commit(o.Root)
	if err != nil {
		return err
	}
	digests := map[string]string{}
	for n, ref := range images {
		if _, d, ok := strings.Cut(ref, "@"); ok {
			digests[chart.DigestKey(n)] = d
		}
	}
	b, err := chart.Package(o.Root, chart.Release{Version: o.Version, Registry: strings.TrimSuffix(o.Registry, "/"), Digests: digests, Created: created})
	if err != nil {
		return err
	}
	p := filepath.Join(o.Out, "chart", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", p, "(helm install staticroute", p+")")
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "release:", err)
	os.Exit(1)
}
