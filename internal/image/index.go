package image

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Arches are the architectures a release's images are built for.
func Arches() []string { return []string{"amd64", "arm64"} }

// Annotations that mark an SBOM in an index as BuildKit marks its
// attestations: container runtimes pass over the unknown/unknown
// platform, and tools find the image the SBOM is of.
const (
	refTypeAnnotation   = "vnd.docker.reference.type"
	refDigestAnnotation = "vnd.docker.reference.digest"
)

// BuildIndex builds s for every arch and returns one OCI image index:
// an image per linux platform and, for each, its SBOM (SBOM) as an OCI
// artifact whose subject is that image. The same commit gives the same
// index digest.
func BuildIndex(ctx context.Context, o Options, s Spec, arches []string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range arches {
		o := o
		o.Arch = arch
		bin, err := compile(ctx, o, s)
		if err != nil {
			return nil, err
		}
		img, err := FromBinary(o, s, arch, bin)
		if err != nil {
			return nil, err
		}
		sbom, err := SBOM(s.Name, o.Version, bin, o.Created)
		if err != nil {
			return nil, err
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return nil, err
		}
		art, err := artifact(sbom, SBOMMediaType, *desc)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}},
			mutate.IndexAddendum{Add: art, Descriptor: v1.Descriptor{
				Platform:     &v1.Platform{OS: "unknown", Architecture: "unknown"},
				ArtifactType: SBOMMediaType,
				Annotations:  map[string]string{refTypeAnnotation: "sbom", refDigestAnnotation: desc.Digest.String()},
			}},
		)
	}
	return idx, nil
}

// emptyJSON is the OCI empty descriptor's content: an artifact's config.
var emptyJSON = []byte("{}")

// artifactCore is an OCI 1.1 artifact: one blob, an empty config, and
// the image it is about as its subject.
type artifactCore struct {
	manifest []byte
	blob     v1.Layer
}

func artifact(blob []byte, mt types.MediaType, subject v1.Descriptor) (v1.Image, error) {
	layer := static.NewLayer(blob, mt)
	ld, err := partial.Descriptor(layer)
	if err != nil {
		return nil, err
	}
	cfg := static.NewLayer(emptyJSON, types.OCIEmptyJSON)
	cd, err := partial.Descriptor(cfg)
	if err != nil {
		return nil, err
	}
	subject.Platform, subject.Annotations = nil, nil
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(mt),
		Config:        *cd,
		Layers:        []v1.Descriptor{*ld},
		Subject:       &subject,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifactCore{manifest: raw, blob: layer})
}

func (a *artifactCore) RawConfigFile() ([]byte, error)      { return emptyJSON, nil }
func (a *artifactCore) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifactCore) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifactCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, err := a.blob.Digest(); err == nil && d == h {
		return a.blob, nil
	}
	return nil, fmt.Errorf("artifact: no blob %s", h)
}
