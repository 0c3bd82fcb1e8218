package config

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/staticroute/staticroute/internal/webhook"
	"github.com/staticroute/staticroute/pkg/validate"
)

// render builds an overlay and returns its documents by "Kind/name".
func render(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		out[r.GetKind()+"/"+r.GetName()] = y
	}
	return out
}

func strict(t *testing.T, y []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(y, into); err != nil {
		t.Fatalf("decoding %T: %v\n%s", into, err, y)
	}
}

func TestDefaultWiresCertManagerToTheWebhook(t *testing.T) {
	docs := render(t, "default")

	var vwc admissionv1.ValidatingWebhookConfiguration
	strict(t, docs["ValidatingWebhookConfiguration/staticroute-validating"], &vwc)
	if len(vwc.Webhooks) != 1 {
		t.Fatalf("want one webhook, got %d", len(vwc.Webhooks))
	}
	hook := vwc.Webhooks[0]
	svcRef := hook.ClientConfig.Service
	if svcRef == nil || svcRef.Path == nil || *svcRef.Path != webhook.Path {
		t.Fatalf("clientConfig.service = %+v, want path %s", svcRef, webhook.Path)
	}
	if *hook.FailurePolicy != admissionv1.Fail || *hook.SideEffects != admissionv1.SideEffectClassNone {
		t.Errorf("failurePolicy %v sideEffects %v, want Fail and None", *hook.FailurePolicy, *hook.SideEffects)
	}
	if hook.TimeoutSeconds == nil || *hook.TimeoutSeconds > 10 {
		t.Errorf("timeoutSeconds %v, want a short timeout", hook.TimeoutSeconds)
	}
	ops := hook.Rules[0].Operations
	if len(hook.Rules) != 1 || len(ops) != 2 || ops[0] != admissionv1.Create || ops[1] != admissionv1.Update || hook.Rules[0].Resources[0] != "staticroutes" {
		t.Errorf("rules %+v, want CREATE and UPDATE of staticroutes only", hook.Rules)
	}

	var svc corev1.Service
	strict(t, docs["Service/"+svcRef.Name], &svc)
	if svc.Namespace != svcRef.Namespace {
		t.Fatalf("Service namespace %q, webhook points at %q", svc.Namespace, svcRef.Namespace)
	}

	// The annotation names the serving Certificate ...
	inject := vwc.Annotations["cert-manager.io/inject-ca-from"]
	ns, name, _ := strings.Cut(inject, "/")
	var serving cmapi.Certificate
	strict(t, docs["Certificate/"+name], &serving)
	if serving.Namespace != ns {
		t.Fatalf("inject-ca-from %q, Certificate is in %q", inject, serving.Namespace)
	}
	// ... whose names are those the API server dials ...
	want := fmt.Sprintf("%s.%s.svc", svc.Name, svc.Namespace)
	found := false
	for _, d := range serving.Spec.DNSNames {
		found = found || d == want
	}
	if !found {
		t.Errorf("serving Certificate dnsNames %v lack %s", serving.Spec.DNSNames, want)
	}
	// ... signed by a CA Issuer whose CA comes from a self-signed Issuer ...
	var caIssuer, selfSigned cmapi.Issuer
	strict(t, docs["Issuer/"+serving.Spec.IssuerRef.Name], &caIssuer)
	if caIssuer.Spec.CA == nil {
		t.Fatalf("Issuer %s is not a CA issuer", caIssuer.Name)
	}
	var ca cmapi.Certificate
	for k, y := range docs {
		if strings.HasPrefix(k, "Certificate/") {
			var c cmapi.Certificate
			strict(t, y, &c)
			if c.Spec.SecretName == caIssuer.Spec.CA.SecretName {
				ca = c
			}
		}
	}
	if !ca.Spec.IsCA {
		t.Fatalf("no CA Certificate writes Secret %s", caIssuer.Spec.CA.SecretName)
	}
	strict(t, docs["Issuer/"+ca.Spec.IssuerRef.Name], &selfSigned)
	if selfSigned.Spec.SelfSigned == nil {
		t.Errorf("the CA is issued by %s, not a self-signed Issuer", selfSigned.Name)
	}
	// ... and mounted by the webhook Deployment the Service selects.
	var dep appsv1.Deployment
	strict(t, docs["Deployment/staticroute-webhook"], &dep)
	mounted := false
	for _, v := range dep.Spec.Template.Spec.Volumes {
		mounted = mounted || (v.Secret != nil && v.Secret.SecretName == serving.Spec.SecretName)
	}
	if !mounted {
		t.Errorf("the Deployment does not mount Secret %s", serving.Spec.SecretName)
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the Deployment's pods", k, v)
		}
	}
}

func TestNodeRouterRunsWithNetAdminOnly(t *testing.T) {
	docs := render(t, "default")
	var ds appsv1.DaemonSet
	strict(t, docs["DaemonSet/staticroute-node-router"], &ds)
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("the node router must run in the host's network namespace")
	}
	var binding rbacv1.ClusterRoleBinding
	strict(t, docs["ClusterRoleBinding/staticroute-node-router"], &binding)
	if s := binding.Subjects[0]; s.Name != spec.ServiceAccountName || s.Namespace != ds.Namespace {
		t.Errorf("the ClusterRoleBinding binds %s/%s, the DaemonSet runs as %s/%s", s.Namespace, s.Name, ds.Namespace, spec.ServiceAccountName)
	}
	sc := spec.Containers[0].SecurityContext
	if sc == nil || (sc.Privileged != nil && *sc.Privileged) || fmt.Sprint(sc.Capabilities.Add) != "[NET_ADMIN NET_RAW]" || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("securityContext %+v: want unprivileged, ALL dropped, NET_ADMIN and NET_RAW added", sc)
	}
	env := spec.Containers[0].Env
	if len(env) == 0 || env[0].Name != "NODE_NAME" || env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME must come from spec.nodeName: %+v", env)
	}
}

// The routers' node-state writes (server-side apply: PATCH) fall in the
// flow schema of their own priority level, which lends and borrows no
// seats and queues what it cannot take at once.
func TestNodeStateWritesHaveTheirOwnPriorityLevel(t *testing.T) {
	docs := render(t, "default")
	var ds appsv1.DaemonSet
	strict(t, docs["DaemonSet/staticroute-node-router"], &ds)
	var fs flowcontrolv1.FlowSchema
	strict(t, docs["FlowSchema/staticroute-node-state"], &fs)
	var pl flowcontrolv1.PriorityLevelConfiguration
	strict(t, docs["PriorityLevelConfiguration/staticroute-node-state"], &pl)
	if fs.Spec.PriorityLevelConfiguration.Name != pl.Name {
		t.Errorf("the flow schema names priority level %q, not %q", fs.Spec.PriorityLevelConfiguration.Name, pl.Name)
	}
	if len(fs.Spec.Rules) != 1 || len(fs.Spec.Rules[0].Subjects) != 1 || len(fs.Spec.Rules[0].ResourceRules) != 1 {
		t.Fatalf("want one rule, one subject, one resource rule: %+v", fs.Spec.Rules)
	}
	sa := fs.Spec.Rules[0].Subjects[0].ServiceAccount
	if sa == nil || sa.Name != ds.Spec.Template.Spec.ServiceAccountName || sa.Namespace != ds.Namespace {
		t.Errorf("the flow schema's subject is %+v, want the DaemonSet's service account %s/%s", sa, ds.Namespace, ds.Spec.Template.Spec.ServiceAccountName)
	}
	rr := fs.Spec.Rules[0].ResourceRules[0]
	if !slices.Contains(rr.Verbs, "patch") || !slices.Equal(rr.Resources, []string{"staticroutenodestates"}) || !rr.ClusterScope {
		t.Errorf("resource rule %+v: want the cluster-scoped staticroutenodestates, patch among the verbs (server-side apply)", rr)
	}
	l := pl.Spec.Limited
	if l == nil || l.LimitResponse.Type != flowcontrolv1.LimitResponseTypeQueue || l.BorrowingLimitPercent == nil || *l.BorrowingLimitPercent != 0 {
		t.Errorf("priority level %+v: want a limited level that queues and borrows nothing", l)
	}
}

func TestTestOverlayHasNoCertManagerAndPointsAtALocalWebhook(t *testing.T) {
	docs := render(t, "test")
	for k := range docs {
		kind, _, _ := strings.Cut(k, "/")
		switch kind {
		case "CustomResourceDefinition", "ValidatingWebhookConfiguration", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
			"FlowSchema", "PriorityLevelConfiguration":
		default:
			t.Errorf("the test overlay installs %s; want no workloads and no cert-manager kinds", k)
		}
	}
	var vwc admissionv1.ValidatingWebhookConfiguration
	strict(t, docs["ValidatingWebhookConfiguration/staticroute-validating"], &vwc)
	cc := vwc.Webhooks[0].ClientConfig
	if cc.Service != nil || cc.URL == nil || !strings.HasSuffix(*cc.URL, webhook.Path) {
		t.Errorf("clientConfig %+v, want a URL ending in %s", cc, webhook.Path)
	}
	if len(vwc.Annotations) != 0 {
		t.Errorf("annotations %v left for a cert-manager that is not there", vwc.Annotations)
	}
}

// The committed CRDs must be what controller-gen makes of api/v1 today.
func TestCRDsAreUpToDate(t *testing.T) {
	gen, err := filepath.Abs("../bin/controller-gen")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gen); err != nil {
		t.Fatalf("controller-gen not built (make bin/controller-gen): %v", err)
	}
	out := t.TempDir()
	cmd := exec.Command(gen, "crd", "paths=./api/...", "output:crd:artifacts:config="+out)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, b)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.yaml"))
	if len(files) == 0 {
		t.Fatal("controller-gen wrote no CRD")
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join("crd", "bases", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("config/crd/bases/%s is stale: run make manifests", filepath.Base(f))
		}
	}
}

// flagDefaults runs a binary of the module with -h and returns its flags
// and their defaults ("" when none is printed).
func flagDefaults(t *testing.T, pkg string) map[string]string {
	t.Helper()
	out, _ := exec.Command("go", "run", pkg, "-h").CombinedOutput()
	flags := map[string]string{}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "  -") {
			continue
		}
		name := strings.Fields(strings.TrimPrefix(l, "  -"))[0]
		def := ""
		if i+1 < len(lines) {
			if _, d, ok := strings.Cut(lines[i+1], `(default `); ok {
				def, _, _ = strings.Cut(strings.TrimPrefix(d, `"`), `"`)
				def = strings.TrimSuffix(def, ")")
			}
		}
		flags[name] = def
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h printed no flags:\n%s", pkg, out)
	}
	return flags
}

// The manifests and the binaries agree: every flag the manifests pass
// exists; each named container port is where the binary serves by
// default; the probes and Services reach those ports by name.
func TestManifestsMatchTheBinaries(t *testing.T) {
	docs := render(t, "monitoring")
	var ds appsv1.DaemonSet
	strict(t, docs["DaemonSet/staticroute-node-router"], &ds)
	var dep appsv1.Deployment
	strict(t, docs["Deployment/staticroute-webhook"], &dep)
	for _, w := range []struct {
		pkg   string
		pod   corev1.PodSpec
		ports map[string]string // container port name → the flag that sets it
	}{
		{"../cmd/node-router", ds.Spec.Template.Spec, map[string]string{"metrics": "metrics-bind-address", "probes": "health-probe-bind-address"}},
		{"../cmd/webhook", dep.Spec.Template.Spec, map[string]string{"webhook": "webhook-port", "metrics": "metrics-bind-address", "probes": "health-probe-bind-address"}},
	} {
		flags := flagDefaults(t, w.pkg)
		c := w.pod.Containers[0]
		for _, a := range c.Args {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if _, ok := flags[name]; !ok {
				t.Errorf("%s: the manifest passes %s, which the binary does not have", w.pkg, a)
			}
		}
		for _, p := range c.Ports {
			flag, ok := w.ports[p.Name]
			if !ok {
				t.Errorf("%s: port %s is no port the binary serves", w.pkg, p.Name)
				continue
			}
			if def := flags[flag]; !strings.HasSuffix(def, fmt.Sprint(p.ContainerPort)) {
				t.Errorf("%s: port %s is %d, the binary serves it on --%s=%s", w.pkg, p.Name, p.ContainerPort, flag, def)
			}
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.StrVal != "probes" {
				t.Errorf("%s: a probe does not use the probes port: %+v", w.pkg, probe)
			}
		}
	}
	// Services reach containers by port name; ServiceMonitors reach
	// Services by port name.
	for _, name := range []string{"Service/staticroute-webhook", "Service/staticroute-webhook-metrics", "Service/staticroute-node-router-metrics"} {
		var svc corev1.Service
		strict(t, docs[name], &svc)
		pod := dep.Spec.Template.Spec
		if strings.Contains(name, "router") {
			pod = ds.Spec.Template.Spec
		}
		for _, sp := range svc.Spec.Ports {
			found := false
			for _, cp := range pod.Containers[0].Ports {
				found = found || cp.Name == sp.TargetPort.StrVal
			}
			if !found {
				t.Errorf("%s targets port %q, which the container does not name", name, sp.TargetPort.StrVal)
			}
		}
	}
	for _, name := range []string{"ServiceMonitor/staticroute-node-router", "ServiceMonitor/staticroute-webhook"} {
		if !strings.Contains(string(docs[name]), "port: metrics") {
			t.Errorf("%s does not scrape the metrics port:\n%s", name, docs[name])
		}
	}
}

// Without cert-manager, the CronJob that renews the certificates runs the
// same Pod as the Job that makes them at install: one cannot drift from
// the other.
func TestCertsCronJobRunsTheJobsPod(t *testing.T) {
	docs := render(t, "without-cert-manager")
	var job batchv1.Job
	var cron batchv1.CronJob
	strict(t, docs["Job/staticroute-certs"], &job)
	strict(t, docs["CronJob/staticroute-certs"], &cron)
	if !reflect.DeepEqual(job.Spec.Template, cron.Spec.JobTemplate.Spec.Template) {
		t.Errorf("the CronJob's Pod differs from the Job's:\n%s\n%s", docs["Job/staticroute-certs"], docs["CronJob/staticroute-certs"])
	}
	if cron.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q: two passes at once would race for the Secrets", cron.Spec.ConcurrencyPolicy)
	}
	if args := job.Spec.Template.Spec.Containers[0].Args; len(args) == 0 || args[0] != "rotate" {
		t.Errorf("the Job runs %v, want certs rotate", args)
	}
}

// The layout is set in one place: both workloads read the ConfigMap
// staticroute-layout through --layout, neither sets a layout flag of its
// own, and what the ConfigMap holds loads.
func TestBothWorkloadsReadTheOneLayout(t *testing.T) {
	for _, overlay := range []string{"default", "without-cert-manager"} {
		docs := render(t, overlay)
		var cm corev1.ConfigMap
		strict(t, docs["ConfigMap/"+validate.LayoutConfigMap], &cm)
		l, err := validate.ParseLayout([]byte(cm.Data["layout.yaml"]))
		if err != nil {
			t.Fatalf("%s: %v", overlay, err)
		}
		if _, err := validate.LoadConfig(l, "layout.yaml", nil); err != nil {
			t.Errorf("%s: the shipped layout does not load: %v", overlay, err)
		}
		var dep appsv1.Deployment
		var ds appsv1.DaemonSet
		strict(t, docs["Deployment/staticroute-webhook"], &dep)
		strict(t, docs["DaemonSet/staticroute-node-router"], &ds)
		for _, pod := range []corev1.PodSpec{dep.Spec.Template.Spec, ds.Spec.Template.Spec} {
			c := pod.Containers[0]
			var layoutArg string
			for _, a := range c.Args {
				for _, f := range []string{"--vpc-cidr", "--pod-cidr", "--service-cidr", "--api-server-address"} {
					if strings.HasPrefix(a, f) {
						t.Errorf("%s: %s sets %s itself: the layout belongs in the ConfigMap", overlay, c.Name, a)
					}
				}
				if v, ok := strings.CutPrefix(a, "--layout="); ok {
					layoutArg = v
				}
			}
			var mounted bool
			for _, m := range c.VolumeMounts {
				for _, v := range pod.Volumes {
					if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == validate.LayoutConfigMap && layoutArg == filepath.Join(m.MountPath, "layout.yaml") {
						mounted = true
					}
				}
			}
			if !mounted {
				t.Errorf("%s: %s does not read layout.yaml of the ConfigMap %s (--layout=%q)", overlay, c.Name, validate.LayoutConfigMap, layoutArg)
			}
		}
	}
}
