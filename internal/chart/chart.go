// Package chart writes the Helm chart charts/staticroute from the same
// kustomize sources as the release files, so that the two cannot drift:
// every object of config/default, config/without-cert-manager and
// config/monitoring becomes a template, the places a user may change
// become values whose defaults are what the release installs.
package chart

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/staticroute/staticroute/internal/release"
	"github.com/staticroute/staticroute/pkg/validate"
)

// Dir is the chart's folder in the repository.
const Dir = "charts/staticroute"

// Namespace is the namespace config/ installs into; the chart installs
// into the release's.
const Namespace = "staticroute-system"

// Generated are the chart's files that Generate writes, by path in Dir;
// Chart.yaml, templates/_helpers.tpl and README.md are written by hand.
func Generated() []string { return []string{"templates/staticroute.yaml", "values.yaml"} }

// the overlays the chart is made of, and when each object is installed.
const (
	withCertManager    = "default"
	withoutCertManager = "without-cert-manager"
	withMonitoring     = "monitoring"
)

// Generate builds the chart's generated files from config/ under root.
func Generate(root string) (map[string][]byte, error) {
	var sets [3][]object
	for i, overlay := range []string{withCertManager, withoutCertManager, withMonitoring} {
		objs, err := objects(root, overlay)
		if err != nil {
			return nil, err
		}
		sets[i] = objs
	}
	tmpl, err := templates(sets[0], sets[1], sets[2])
	if err != nil {
		return nil, err
	}
	values, err := valuesFile(sets[0])
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"templates/staticroute.yaml": tmpl, "values.yaml": values}, nil
}

// templates is every object once: those of both overlays as they are (or
// one of two, by certManager.enabled, where they differ), those of one
// under its condition, and the monitoring objects under
// metrics.serviceMonitor.enabled.
func templates(with, without, monitoring []object) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Generated from config/ by `make chart` (internal/chart): edit config/, not this file.\n")
	inWithout := index(without)
	inWith := index(with)
	emit := func(cond string, objs ...object) error {
		texts := make([]string, len(objs))
		for i, o := range objs {
			t, err := template(o)
			if err != nil {
				return fmt.Errorf("%s: %w", o.key, err)
			}
			texts[i] = t
		}
		switch {
		case cond == "":
			fmt.Fprintf(&b, "---\n%s", texts[0])
		case len(texts) == 1:
			fmt.Fprintf(&b, "{{- if %s }}\n---\n%s{{ end }}\n", cond, texts[0])
		default:
			fmt.Fprintf(&b, "{{- if %s }}\n---\n%s{{ else }}\n---\n%s{{ end }}\n", cond, texts[0], texts[1])
		}
		return nil
	}
	const certManager = ".Values.certManager.enabled"
	for _, o := range with {
		other, both := inWithout[o.key]
		var err error
		switch {
		case o.kind() == "Namespace":
			err = emit(".Values.namespace.create", o)
		case !both:
			err = emit(certManager, o)
		case reflect.DeepEqual(o.m, other.m):
			err = emit("", o)
		default:
			err = emit(certManager, o, other)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, o := range without {
		if _, ok := inWith[o.key]; !ok {
			if err := emit("not "+certManager, o); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range monitoring {
		if _, ok := inWith[o.key]; !ok {
			if err := emit(".Values.metrics.serviceMonitor.enabled", o); err != nil {
				return nil, err
			}
		}
	}
	return b.Bytes(), nil
}

func index(objs []object) map[string]object {
	m := make(map[string]object, len(objs))
	for _, o := range objs {
		m[o.key] = o
	}
	return m
}

// template is one object as a template: its values placed (place), then
// written as YAML, Helm's braces in it escaped, the namespace made the
// release's, and each placeholder's line written.
func template(o object) (string, error) {
	m, err := deepCopy(o.m)
	if err != nil {
		return "", err
	}
	p := newParams()
	if err := place(p, object{key: o.key, m: m}); err != nil {
		return "", err
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return "", err
	}
	s := strings.NewReplacer("{{", `{{ "{{" }}`, "}}", `{{ "}}" }}`).Replace(string(y))
	s = strings.ReplaceAll(s, Namespace, "{{ .Release.Namespace }}")
	return p.fill(s)
}

func deepCopy(m map[string]any) (map[string]any, error) {
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, yaml.Unmarshal(b, &out)
}

// workload is the chart's values key for a workload of config/, by kind
// and name ("" for any other object).
func workload(kindName string) string {
	return map[string]string{
		"Deployment/staticroute-webhook":    "webhook",
		"DaemonSet/staticroute-node-router": "nodeRouter",
	}[kindName]
}

// DigestKey is the key under image.digests of the image of binary name.
func DigestKey(name string) string {
	return map[string]string{"webhook": "webhook", "node-router": "nodeRouter", "certs": "certs"}[name]
}

// place puts the chart's values into o.
func place(p *params, o object) error {
	switch {
	case o.kind() == "CustomResourceDefinition":
		meta := o.m["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
			meta["annotations"] = ann
		}
		ann[p.token(func(indent, _ string) string {
			return fmt.Sprintf("{{- if .Values.crds.keep }}\n%shelm.sh/resource-policy: keep\n{{- end }}", indent)
		})] = "x"
	case o.kind() == "ConfigMap" && o.name() == validate.LayoutConfigMap:
		return placeLayout(p, o)
	}
	if v := workload(o.kind() + "/" + o.name()); v != "" {
		return placeWorkload(p, o, v)
	}
	placeImages(p, o.m)
	return nil
}

// placeImages makes every image: of config/ the chart's image helper.
func placeImages(p *params, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "image" && strings.HasPrefix(s, release.ImageName("")) {
				name := strings.TrimPrefix(s, release.ImageName(""))
				v[k] = p.scalar(fmt.Sprintf(`include "staticroute.image" (dict "ctx" $ "name" %q "key" %q)`, name, DigestKey(name)))
				continue
			}
			placeImages(p, x)
		}
	case []any:
		for _, x := range v {
			placeImages(p, x)
		}
	}
}
