package chart

import (
	"errors"
	"fmt"
	"strings"
)

// podFields are the pod spec's fields a user sets per workload, each
// written only when not empty.
func podFields() []string { return []string{"nodeSelector", "tolerations", "affinity"} }

// containerFields are the first container's.
func containerFields() []string { return []string{"resources", "livenessProbe", "readinessProbe"} }

// placeWorkload makes a workload's replicas, scheduling, resources,
// probes and extra arguments the values under v.
func placeWorkload(p *params, o object, v string) error {
	spec, _ := o.m["spec"].(map[string]any)
	pod := dig(spec, "template", "spec")
	containers, _ := pod["containers"].([]any)
	if pod == nil || len(containers) == 0 {
		return errors.New("a workload without a pod template or a container")
	}
	if _, ok := spec["replicas"]; ok {
		spec["replicas"] = p.scalar(".Values." + v + ".replicas")
	}
	for _, f := range podFields() {
		pod[f] = p.block(".Values." + v + "." + f)
	}
	c := containers[0].(map[string]any)
	for _, f := range containerFields() {
		c[f] = p.block(".Values." + v + "." + f)
	}
	args, _ := c["args"].([]any)
	c["args"] = append(args, p.listTail(".Values."+v+".extraArgs"))
	placeImages(p, pod)
	return nil
}

// defaults are a workload's values as config/ sets them.
func defaults(o object) map[string]any {
	out := map[string]any{}
	spec, _ := o.m["spec"].(map[string]any)
	if r, ok := spec["replicas"]; ok {
		out["replicas"] = r
	}
	pod := dig(spec, "template", "spec")
	for _, f := range podFields() {
		out[f] = orEmpty(pod[f], f)
	}
	containers, _ := pod["containers"].([]any)
	if len(containers) > 0 {
		c, _ := containers[0].(map[string]any)
		for _, f := range containerFields() {
			out[f] = orEmpty(c[f], f)
		}
	}
	out["extraArgs"] = []any{}
	return out
}

func orEmpty(v any, field string) any {
	if v != nil {
		return v
	}
	if field == "tolerations" {
		return []any{}
	}
	return map[string]any{}
}

func dig(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		m, _ = m[k].(map[string]any)
	}
	return m
}

// placeLayout makes the layout file the value layout: the release's text
// (which sets nothing) when it is empty.
func placeLayout(p *params, o object) error {
	data, _ := o.m["data"].(map[string]any)
	text, ok := data["layout.yaml"].(string)
	if !ok {
		return errors.New("the layout's ConfigMap has no layout.yaml")
	}
	data["layout.yaml"] = p.token(func(indent, key string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s%s: |\n{{- if .Values.layout }}{{ toYaml .Values.layout | nindent %d }}\n{{- else }}", indent, key, len(indent)+2)
		for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			fmt.Fprintf(&b, "\n%s  %s", indent, l)
		}
		b.WriteString("\n{{- end }}")
		return b.String()
	})
	return nil
}
