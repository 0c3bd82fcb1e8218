package chart

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/staticroute/staticroute/internal/release"
)

// object is one Kubernetes object of a kustomize build, as JSON-like data.
type object struct {
	key string // kind/namespace/name
	m   map[string]any
}

func (o object) kind() string { return str(o.m, "kind") }

func (o object) name() string {
	meta, _ := o.m["metadata"].(map[string]any)
	return str(meta, "name")
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// objects are config/overlay's objects in kustomize's order, images still
// named by release.ImageName.
func objects(root, overlay string) ([]object, error) {
	y, err := release.Kustomize(root, overlay)
	if err != nil {
		return nil, err
	}
	return parse(y)
}

// parse splits a YAML stream into its objects; empty documents are
// skipped.
func parse(y []byte) ([]object, error) {
	var out []object
	for i, doc := range bytes.Split(y, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 || bytes.Equal(bytes.TrimSpace(doc), []byte("---")) {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if m == nil {
			continue
		}
		meta, _ := m["metadata"].(map[string]any)
		out = append(out, object{key: fmt.Sprintf("%s/%s/%s", str(m, "kind"), str(meta, "namespace"), str(meta, "name")), m: m})
	}
	return out, nil
}

// Keyed is an object with its key, for readers outside the package.
type Keyed struct {
	Key    string // kind/namespace/name
	Object map[string]any
}

// Parse splits a YAML stream (helm template's, a release file) into its
// objects with their keys.
func Parse(y []byte) ([]Keyed, error) {
	objs, err := parse(y)
	if err != nil {
		return nil, err
	}
	out := make([]Keyed, len(objs))
	for i, o := range objs {
		out[i] = Keyed{o.key, o.m}
	}
	return out, nil
}
