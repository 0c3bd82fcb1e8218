package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/staticroute/staticroute/internal/image"
	"github.com/staticroute/staticroute/internal/release"
	"github.com/staticroute/staticroute/test/framework"
)

// installCertManagerCRDs applies cert-manager's own CRDs, from its Go
// module (its controller is not served here: nothing issues).
func installCertManagerCRDs(t *testing.T, cp *framework.ControlPlane) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("finding cert-manager's module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	for _, f := range []string{"cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml"} {
		cp.MustKubectl(t, nil, "apply", "--server-side", "-f", filepath.Join(dir, f))
	}
	cp.MustKubectl(t, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io")
}

// The release file applies to a real API server (a server-side dry run
// first, then for real), and each component's ServiceAccount may do what
// its binary does and nothing of what it must not.
func TestReleaseInstallsWithLeastPrivilege(t *testing.T) {
	framework.RequireRoot(t)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	y, err := release.Render(root, "default", release.Images{"webhook": "e2e/webhook@sha256:0", "node-router": "e2e/node-router@sha256:0"})
	if err != nil {
		t.Fatal(err)
	}
	cp := framework.StartControlPlane(t)
	installCertManagerCRDs(t, cp)
	// A server-side dry run cannot create the namespace that the rest
	// goes into: the namespace first, as the install guide says.
	cp.MustKubectl(t, nil, "create", "namespace", "staticroute-system")
	cp.MustKubectl(t, y, "apply", "--server-side", "--dry-run=server", "-f", "-")
	cp.MustKubectl(t, y, "apply", "-f", "-")
	// Applying the same file again changes nothing. kubectl reports a
	// PodDisruptionBudget "configured" each time (its client-side patch
	// of the selector is never empty), though the object stays as it was:
	// for it, the resourceVersion tells.
	pdbVersion := func() string {
		return cp.MustKubectl(t, nil, "get", "pdb", "staticroute-webhook", "-n", "staticroute-system", "-o", "jsonpath={.metadata.resourceVersion}")
	}
	before := pdbVersion()
	out := cp.MustKubectl(t, y, "apply", "-f", "-")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "configured") && !strings.HasPrefix(line, "poddisruptionbudget.policy/") {
			t.Errorf("applying the release again reconfigures objects: %s", line)
		}
	}
	if after := pdbVersion(); after != before {
		t.Errorf("applying the release again changed the PodDisruptionBudget (resourceVersion %s, then %s)", before, after)
	}

	const (
		router  = "system:serviceaccount:staticroute-system:staticroute-node-router"
		webhook = "system:serviceaccount:staticroute-system:staticroute-webhook"
	)
	type check struct {
		as, verb, resource, ns string
		allowed                bool
	}
	var checks []check
	allow := func(as, ns, resource string, verbs ...string) {
		for _, v := range verbs {
			checks = append(checks, check{as, v, resource, ns, true})
		}
	}
	deny := func(as, ns, resource string, verbs ...string) {
		for _, v := range verbs {
			checks = append(checks, check{as, v, resource, ns, false})
		}
	}
	// The router: reads routes, its Node (and every Node's podCIDRs, and
	// the ServiceCIDRs, where the layout leaves them out) and the API
	// server's endpoints; writes its node state and Events.
	allow(router, "", "staticroutes.networking.digitalocean.com", "get", "list", "watch")
	allow(router, "", "nodes", "get", "list", "watch")
	allow(router, "", "servicecidrs.networking.k8s.io", "list", "watch")
	deny(router, "", "servicecidrs.networking.k8s.io", "create", "update", "delete")
	allow(router, "default", "endpointslices.discovery.k8s.io", "list", "watch")
	allow(router, "", "staticroutenodestates.networking.digitalocean.com", "create", "patch")
	allow(router, "default", "events.events.k8s.io", "create", "patch")
	deny(router, "", "staticroutes.networking.digitalocean.com", "create", "update", "patch", "delete")
	deny(router, "", "staticroutes.networking.digitalocean.com/status", "update", "patch")
	deny(router, "", "staticroutenodestates.networking.digitalocean.com", "delete", "list", "watch")
	deny(router, "", "nodes", "update", "patch", "delete")
	deny(router, "staticroute-system", "secrets", "get", "list", "watch")
	deny(router, "kube-system", "secrets", "get", "list")
	// The webhook: reads routes and node states (and the Nodes and
	// ServiceCIDRs the layout is discovered from), writes route status
	// and its Lease.
	allow(webhook, "", "staticroutes.networking.digitalocean.com", "get", "list", "watch")
	allow(webhook, "", "staticroutenodestates.networking.digitalocean.com", "get", "list", "watch")
	allow(webhook, "", "staticroutes.networking.digitalocean.com/status", "update", "patch")
	allow(webhook, "staticroute-system", "leases.coordination.k8s.io", "get", "create", "update")
	allow(webhook, "default", "events.events.k8s.io", "create", "patch")
	deny(webhook, "", "staticroutes.networking.digitalocean.com", "create", "update", "patch", "delete")
	deny(webhook, "", "staticroutenodestates.networking.digitalocean.com", "create", "patch", "delete")
	allow(webhook, "", "nodes", "list", "watch")
	allow(webhook, "", "servicecidrs.networking.k8s.io", "list", "watch")
	deny(webhook, "", "nodes", "update", "patch", "delete")
	deny(webhook, "", "servicecidrs.networking.k8s.io", "create", "update", "delete")
	deny(webhook, "staticroute-system", "secrets", "get", "list")
	deny(webhook, "kube-system", "leases.coordination.k8s.io", "update")

	for _, c := range checks {
		resource, sub, _ := strings.Cut(c.resource, "/")
		args := []string{"auth", "can-i", c.verb, resource, "--as", c.as}
		if sub != "" {
			args = append(args, "--subresource", sub)
		}
		if c.ns != "" {
			args = append(args, "-n", c.ns)
		}
		r := cp.Kubectl(context.Background(), nil, args...)
		got := strings.TrimSpace(r.Stdout) == "yes"
		if got != c.allowed {
			t.Errorf("%s %s %s (namespace %q): allowed=%v, want %v (%s)", c.as[strings.LastIndex(c.as, ":")+1:], c.verb, c.resource, c.ns, got, c.allowed, strings.TrimSpace(r.Stdout+r.Stderr))
		}
	}

	// The ValidatingAdmissionPolicy: a router's token, bound to its Pod on
	// node-a, may write node-a's state and not node-b's.
	cp.MustKubectl(t, []byte("apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n"), "create", "-f", "-")
	// The token alone: the last --kubeconfig wins over the administrator's.
	routerConfig := framework.RouterKubeconfig(t, cp, cp.Config.Host, "node-a")
	state := func(node string) []byte {
		return []byte("apiVersion: networking.digitalocean.com/v1\nkind: StaticRouteNodeState\nmetadata: {name: " + node + "}\n")
	}
	if r := cp.Kubectl(context.Background(), state("node-a"), "--kubeconfig", routerConfig, "create", "-f", "-"); r.Err != nil {
		t.Errorf("node-a's router writing node-a's state: %v\n%s", r.Err, r.Stderr)
	}
	if r := cp.Kubectl(context.Background(), state("node-b"), "--kubeconfig", routerConfig, "create", "-f", "-"); r.Err == nil || !strings.Contains(r.Stderr, "only the StaticRouteNodeState of its own node") {
		t.Errorf("node-a's router writing node-b's state: %v\n%s", r.Err, r.Stderr)
	}
}

// Installed in another namespace through the documented overlay
// (config/samples/other-namespace), nothing refers to staticroute-system,
// and the node-state policy still holds: it names no namespace, so a
// namespace overlay can no longer switch it off.
func TestReleaseInAnotherNamespace(t *testing.T) {
	framework.RequireRoot(t)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	y, err := release.Render(root, "samples/other-namespace", release.Images{"webhook": "e2e/webhook@sha256:0", "node-router": "e2e/node-router@sha256:0"})
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(y, []byte("staticroute-system")); i >= 0 {
		t.Errorf("the overlay's rendering still names staticroute-system: %q", y[max(0, i-200):min(len(y), i+50)])
	}
	cp := framework.StartControlPlane(t)
	installCertManagerCRDs(t, cp)
	cp.MustKubectl(t, nil, "create", "namespace", "other")
	cp.MustKubectl(t, y, "apply", "-f", "-")
	cp.MustKubectl(t, []byte("apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n"), "create", "-f", "-")
	routerConfig := framework.RouterKubeconfigIn(t, cp, "other", cp.Config.Host, "node-a")
	state := func(node string) []byte {
		return []byte("apiVersion: networking.digitalocean.com/v1\nkind: StaticRouteNodeState\nmetadata: {name: " + node + "}\n")
	}
	if r := cp.Kubectl(context.Background(), state("node-a"), "--kubeconfig", routerConfig, "create", "-f", "-"); r.Err != nil {
		t.Errorf("node-a's router (namespace other) writing node-a's state: %v\n%s", r.Err, r.Stderr)
	}
	if r := cp.Kubectl(context.Background(), state("node-b"), "--kubeconfig", routerConfig, "create", "-f", "-"); r.Err == nil || !strings.Contains(r.Stderr, "only the StaticRouteNodeState of its own node") {
		t.Errorf("node-a's router (namespace other) writing node-b's state: %v\n%s", r.Err, r.Stderr)
	}
	// The CRDs' category lists both kinds, and shadows neither kind's own
	// name (a category named staticroute did: `kubectl get staticroute
	// NAME` then looked for node states of that name too, and failed).
	if r := cp.Kubectl(context.Background(), nil, "get", "staticroute", "nosuch", "--ignore-not-found"); r.Err != nil {
		t.Errorf("kubectl get staticroute NAME: %v\n%s", r.Err, r.Stderr)
	}
	if r := cp.Kubectl(context.Background(), nil, "get", "staticrouting", "-o", "name"); !strings.Contains(r.Stdout, "staticroutenodestate.networking.digitalocean.com/node-a") {
		t.Errorf("kubectl get staticrouting: %q %v, want node-a's state among them", r.Stdout, r.Err)
	}
	// A token of the router's ServiceAccount bound to no Pod carries no
	// node: it writes no node's state.
	token := cp.MustKubectl(t, nil, "create", "token", "staticroute-node-router", "-n", "other")
	unbound := framework.TokenKubeconfig(t, cp, cp.Config.Host, strings.TrimSpace(token))
	if r := cp.Kubectl(context.Background(), state("node-c"), "--kubeconfig", unbound, "create", "-f", "-"); r.Err == nil || !strings.Contains(r.Stderr, "only the StaticRouteNodeState of its own node") {
		t.Errorf("the router's ServiceAccount, with a token bound to no Pod, writing node-c's state: %v\n%s", r.Err, r.Stderr)
	}
}

// Without cert-manager, the release's Job (certs rotate, the certs image
// under runc with its Pod's spec and ServiceAccount) makes the webhook's
// CA and serving Secrets and injects the CA; run again, it keeps all.
// The CronJob runs the same Pod (TestCertificateRotation rotates).
func TestReleaseWithoutCertManager(t *testing.T) {
	framework.RequireRoot(t)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	y, err := release.Render(root, "without-cert-manager", release.Images{"webhook": "e2e/webhook", "node-router": "e2e/node-router", "certs": "e2e/certs"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(y, []byte("cert-manager.io")) {
		t.Fatal("the overlay still names cert-manager")
	}
	var job batchv1.Job
	for _, doc := range bytes.Split(y, []byte("\n---\n")) {
		if bytes.Contains(doc, []byte("kind: Job")) {
			if err := yaml.Unmarshal(doc, &job); err != nil {
				t.Fatal(err)
			}
		}
	}
	var spec image.Spec
	for _, s := range image.Specs() {
		if s.Name == "certs" {
			spec = s
		}
	}
	img, err := image.Build(context.Background(), image.Options{Root: root, Version: "e2e", Created: time.Unix(0, 0)}, spec)
	if err != nil {
		t.Fatal(err)
	}
	cp := framework.StartControlPlane(t)
	cp.MustKubectl(t, nil, "create", "namespace", "staticroute-system")
	cp.MustKubectl(t, y, "apply", "-f", "-")

	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	runJob := func(id string) string {
		t.Helper()
		r := cp.Kubectl(context.Background(), nil, "create", "token", job.Spec.Template.Spec.ServiceAccountName, "-n", "staticroute-system")
		if r.Err != nil {
			t.Fatalf("token: %v\n%s", r.Err, r.Stderr)
		}
		p := framework.RunSandboxed(t, id, framework.Sandbox{
			Pod: job.Spec.Template.Spec, Container: "certs", Image: img, Env: map[string]string{"POD_NAMESPACE": "staticroute-system"},
			Token: strings.TrimSpace(r.Stdout), CA: string(cp.Config.CAData), Namespace: "staticroute-system", APIServer: u.Host,
		})
		if err := p.Wait(time.Minute); err != nil {
			t.Fatalf("the Job failed: %v\n%s", err, p.Output())
		}
		return p.Output()
	}
	out := runJob("staticroute-e2e-certs-1")
	if !strings.Contains(out, "new CA (there is none)") || !strings.Contains(out, "new serving certificate (there is none)") {
		t.Fatalf("first run: %s", out)
	}
	secretCA, caBundle, cert := certsInCluster(t, cp)
	if !bytes.Equal(secretCA, caBundle) {
		t.Fatal("the webhook configuration does not trust the Secret's CA")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caBundle) {
		t.Fatal("the caBundle holds no certificate")
	}
	block, _ := pem.Decode(cert)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "staticroute-webhook.staticroute-system.svc"}); err != nil {
		t.Fatalf("the serving certificate does not verify for the Service: %v", err)
	}
	if out := runJob("staticroute-e2e-certs-2"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("second run: %s", out)
	}
	if again, _, _ := certsInCluster(t, cp); !bytes.Equal(again, secretCA) {
		t.Fatal("a second run replaced the CA")
	}
	// The Job may read no other Secret.
	if r := cp.Kubectl(context.Background(), nil, "auth", "can-i", "get", "secrets/other", "-n", "staticroute-system", "--as", "system:serviceaccount:staticroute-system:staticroute-certs"); strings.TrimSpace(r.Stdout) != "no" {
		t.Errorf("the certs Job may read other Secrets: %s%s", r.Stdout, r.Stderr)
	}
}

// certsInCluster are the webhook Secret's CA, the webhook configuration's
// caBundle and the Secret's serving certificate.
func certsInCluster(t *testing.T, cp *framework.ControlPlane) (secretCA, caBundle, cert []byte) {
	t.Helper()
	var s struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal([]byte(cp.MustKubectl(t, nil, "get", "secret", "staticroute-webhook-serving", "-n", "staticroute-system", "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	var vwc struct {
		Webhooks []struct {
			ClientConfig struct {
				CABundle []byte `json:"caBundle"`
			} `json:"clientConfig"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal([]byte(cp.MustKubectl(t, nil, "get", "validatingwebhookconfiguration", "staticroute-validating", "-o", "json")), &vwc); err != nil {
		t.Fatal(err)
	}
	if len(vwc.Webhooks) == 0 {
		t.Fatal("no webhooks")
	}
	return s.Data["ca.crt"], vwc.Webhooks[0].ClientConfig.CABundle, s.Data["tls.crt"]
}
