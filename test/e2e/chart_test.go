package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/staticroute/staticroute/internal/chart"
	"github.com/staticroute/staticroute/internal/release"
	"github.com/staticroute/staticroute/pkg/validate"
	"github.com/staticroute/staticroute/test/framework"
)

// helmTemplate renders charts/staticroute with helm (built from the
// module proxy into bin/) as release "staticroute" in namespace, with
// --set pairs.
func helmTemplate(t *testing.T, root, namespace string, set ...string) map[string]map[string]any {
	t.Helper()
	return helmTemplateOf(t, filepath.Join(root, chart.Dir), namespace, set...)
}

// helmTemplateOf renders the chart at path (a folder or a package).
func helmTemplateOf(t *testing.T, path, namespace string, set ...string) map[string]map[string]any {
	t.Helper()
	args := []string{"template", "staticroute", path, "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(framework.Bin(t, "helm"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return byKey(t, out)
}

func byKey(t *testing.T, y []byte) map[string]map[string]any {
	t.Helper()
	objs, err := chart.Parse(y)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, o := range objs {
		if _, dup := out[o.Key]; dup {
			t.Fatalf("%s twice", o.Key)
		}
		out[o.Key] = o.Object
	}
	return out
}

// sameObjects reports every object that one side lacks or that differs.
func sameObjects(t *testing.T, what string, got, want map[string]map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: the chart lacks %s", what, k)
		case !reflect.DeepEqual(g, w):
			gy, _ := yaml.Marshal(g)
			wy, _ := yaml.Marshal(w)
			t.Errorf("%s: %s differs\nchart:\n%s\nrelease:\n%s", what, k, gy, wy)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: the chart has %s, which the release does not", what, k)
		}
	}
}

// TestChartIsTheRelease lints charts/staticroute with helm and renders it:
// with the values a release names, each of its variants (cert-manager on
// and off, ServiceMonitors) is the matching release file, object by
// object; with its default values, only what Helm's conventions ask
// differs. Every value changes what it says, and an install into another
// namespace names staticroute-system nowhere and applies to a real API
// server.
func TestChartIsTheRelease(t *testing.T) {
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	helm := framework.Bin(t, "helm")
	for _, set := range [][]string{nil, {"certManager.enabled=false"}, {"metrics.serviceMonitor.enabled=true", "namespace.create=true"}} {
		args := []string{"lint", "--strict", filepath.Join(root, chart.Dir)}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		if out, err := exec.Command(helm, args...).CombinedOutput(); err != nil {
			t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	images := release.Images{}
	pin := []string{"image.registry=registry.example/staticroute", "image.tag=v9.8.7", "crds.keep=false", "namespace.create=true"}
	for _, name := range []string{"webhook", "node-router", "certs"} {
		images[name] = "registry.example/staticroute/" + name + ":v9.8.7@" + digest
		pin = append(pin, fmt.Sprintf("image.digests.%s=%s", map[string]string{"webhook": "webhook", "node-router": "nodeRouter", "certs": "certs"}[name], digest))
	}
	releaseObjects := func(overlay string) map[string]map[string]any {
		y, err := release.Render(root, overlay, images)
		if err != nil {
			t.Fatal(err)
		}
		return byKey(t, y)
	}
	for _, v := range []struct {
		overlay string
		set     []string
	}{
		{"default", nil},
		{"without-cert-manager", []string{"certManager.enabled=false"}},
		{"monitoring", []string{"metrics.serviceMonitor.enabled=true"}},
	} {
		sameObjects(t, v.overlay, helmTemplate(t, root, chart.Namespace, slices.Concat(pin, v.set)...), releaseObjects(v.overlay))
	}

	// Default values: the release less its Namespace (Helm needs it
	// before it installs), the CRDs kept by helm uninstall.
	got := helmTemplate(t, root, chart.Namespace)
	want := releaseObjects("default")
	for k, o := range want {
		switch {
		case strings.HasPrefix(k, "Namespace/"):
			delete(want, k)
		case strings.HasPrefix(k, "CustomResourceDefinition/"):
			meta := o["metadata"].(map[string]any)
			meta["annotations"].(map[string]any)["helm.sh/resource-policy"] = "keep"
		}
	}
	for k, o := range got {
		walkImages(o, func(ref string) string {
			if !strings.HasPrefix(ref, "ghcr.io/staticroute/") || strings.Contains(ref, "@") {
				t.Errorf("%s: default image %s, want ghcr.io/staticroute/NAME:APPVERSION", k, ref)
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(ref, "ghcr.io/staticroute/"), ":")
			return images[name]
		})
	}
	sameObjects(t, "default values", got, want)

	// The package make release writes: its default values name the
	// release's images by digest.
	digests := map[string]string{}
	for name := range images {
		digests[chart.DigestKey(name)] = digest
	}
	pkg, err := chart.Package(root, chart.Release{Version: "v9.8.7", Registry: "registry.example/staticroute", Digests: digests, Created: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(t.TempDir(), "staticroute-9.8.7.tgz")
	if err := os.WriteFile(tgz, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	want = releaseObjects("default")
	delete(want, "Namespace//"+chart.Namespace)
	sameObjects(t, "the package's default values", helmTemplateOf(t, tgz, chart.Namespace, "crds.keep=false"), want)

	checkChartValues(t, root)
}

// walkImages replaces every image: in o by f of it.
func walkImages(o any, f func(string) string) {
	switch o := o.(type) {
	case map[string]any:
		for k, v := range o {
			if s, ok := v.(string); ok && k == "image" {
				o[k] = f(s)
				continue
			}
			walkImages(v, f)
		}
	case []any:
		for _, v := range o {
			walkImages(v, f)
		}
	}
}

// checkChartValues renders the chart with each value set, checks that it
// lands where it says, and installs that into a real API server in
// another namespace.
func checkChartValues(t *testing.T, root string) {
	t.Helper()
	got := helmTemplate(t, root, "routes",
		"layout.vpcCIDRs={198.51.100.0/24}", "layout.podCIDRs={198.18.64.0/18}",
		"webhook.replicas=3", "webhook.extraArgs={--summary-qps=5}",
		"nodeRouter.extraArgs={--flap-half-life=10s}", "nodeRouter.tolerations=null",
		"nodeRouter.resources.limits.memory=256Mi", "certManager.enabled=false", "namespace.create=true")
	l, err := validate.ParseLayout([]byte(dig[string](t, got["ConfigMap/routes/staticroute-layout"], "data", "layout.yaml")))
	if err != nil || !slices.Equal(l.VPCCIDRs, []string{"198.51.100.0/24"}) || !slices.Equal(l.PodCIDRs, []string{"198.18.64.0/18"}) {
		t.Errorf("layout: %+v, %v", l, err)
	}
	dep := got["Deployment/routes/staticroute-webhook"]
	if r := dig[float64](t, dep, "spec", "replicas"); r != 3 {
		t.Errorf("webhook.replicas=3: %v", r)
	}
	if args := containerArgs(t, dep); args[len(args)-1] != "--summary-qps=5" {
		t.Errorf("webhook.extraArgs: %v", args)
	}
	ds := got["DaemonSet/routes/staticroute-node-router"]
	if args := containerArgs(t, ds); args[len(args)-1] != "--flap-half-life=10s" {
		t.Errorf("nodeRouter.extraArgs: %v", args)
	}
	pod := dig[map[string]any](t, ds, "spec", "template", "spec")
	if _, ok := pod["tolerations"]; ok {
		t.Errorf("nodeRouter.tolerations=null still renders tolerations: %v", pod["tolerations"])
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	if m := dig[string](t, c, "resources", "limits", "memory"); m != "256Mi" {
		t.Errorf("nodeRouter.resources.limits.memory: %v", m)
	}
	var all strings.Builder
	for k, o := range got {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(y), chart.Namespace) {
			t.Errorf("%s names %s, installed into routes", k, chart.Namespace)
		}
		all.WriteString("---\n")
		all.Write(y)
	}
	cp := framework.StartControlPlane(t)
	// The namespace first, as for helm install (the objects are applied
	// in no particular order here).
	cp.MustKubectl(t, nil, "create", "namespace", "routes")
	if r := cp.Kubectl(context.Background(), []byte(all.String()), "apply", "--server-side", "-f", "-"); r.Err != nil {
		t.Fatalf("applying the chart rendered into routes: %v\n%s", r.Err, r.Stderr)
	}
	if out := cp.MustKubectl(t, nil, "get", "deploy,ds,cronjob,job", "-n", "routes", "-o", "name"); !strings.Contains(out, "deployment.apps/staticroute-webhook") || !strings.Contains(out, "daemonset.apps/staticroute-node-router") || !strings.Contains(out, "cronjob.batch/") {
		t.Errorf("the chart's workloads in routes: %s", out)
	}
}

func containerArgs(t *testing.T, workload map[string]any) []string {
	t.Helper()
	cs := dig[[]any](t, workload, "spec", "template", "spec", "containers")
	var out []string
	for _, a := range cs[0].(map[string]any)["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

func dig[T any](t *testing.T, m map[string]any, path ...string) T {
	t.Helper()
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: no %s", path, k)
		}
		v = mm[k]
	}
	out, ok := v.(T)
	if !ok {
		t.Fatalf("%v: %T, not %T", path, v, out)
	}
	return out
}
