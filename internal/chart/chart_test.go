package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed chart is what config/ generates: a change to config/
// without make chart fails here.
func TestChartIsGenerated(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Generated() {
		got, err := os.ReadFile(filepath.Join(root, Dir, name))
		if err != nil {
			t.Fatalf("%v: run make chart", err)
		}
		if !bytes.Equal(got, files[name]) {
			t.Errorf("%s/%s is not what config/ generates: run make chart", Dir, name)
		}
	}
}

func TestFillWritesEachPlaceholdersLine(t *testing.T) {
	p := newParams()
	y := "spec:\n  replicas: " + p.scalar(".Values.replicas") + "\n  template:\n    args:\n    - --a\n    - " + p.listTail(".Values.extraArgs") + "\n    resources: " + p.block(".Values.resources") + "\n"
	got, err := p.fill(y)
	if err != nil {
		t.Fatal(err)
	}
	want := "spec:\n  replicas: {{ .Values.replicas }}\n  template:\n    args:\n    - --a\n{{- range .Values.extraArgs }}\n    - {{ . | quote }}\n{{- end }}\n{{- with .Values.resources }}\n    resources:{{- toYaml . | nindent 6 }}\n{{- end }}\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := p.fill("  x: chart__param__99\n"); err == nil || !strings.Contains(err.Error(), "unknown placeholder") {
		t.Errorf("an unknown placeholder: %v", err)
	}
}

// Helm's own braces in config/ (a Prometheus rule's {{ $labels.node }})
// stay text.
func TestTemplateEscapesBraces(t *testing.T) {
	o := object{key: "ConfigMap/x/y", m: map[string]any{"kind": "ConfigMap", "metadata": map[string]any{"name": "y", "namespace": Namespace}, "data": map[string]any{"a": "node {{ $labels.node }}"}}}
	got, err := template(o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `node {{ "{{" }} $labels.node {{ "}}" }}`) || !strings.Contains(got, "namespace: {{ .Release.Namespace }}") {
		t.Errorf("%s", got)
	}
}
