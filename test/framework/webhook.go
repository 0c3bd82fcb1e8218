package framework

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/staticroute/staticroute/certs"
	"github.com/staticroute/staticroute/test/netlab"
	"github.com/staticroute/staticroute/test/tb"
)

// WebhookAddr is where config/test points the API server: the webhook
// listens there in tests and the demo.
const WebhookAddr = "127.0.0.1:9443"

// WebhookServiceAccount is the identity config/rbac grants the webhook.
const WebhookServiceAccount = "system:serviceaccount:staticroute-system:staticroute-webhook"

// Webhook is a running cmd/webhook and what it needs to restart. It
// reaches the API server through API, which a test may pause to cut it
// off, as an outage would.
type Webhook struct {
	*Process
	API       *netlab.Forwarder
	cp        *ControlPlane
	CertDir   string
	probeAddr string
	args      []string
	kc        string
}

// NewWebhookCerts makes the webhook's CA and serving certificate for
// WebhookAddr in a temporary folder.
func NewWebhookCerts(t tb.T) (dir string, ca []byte) {
	t.Helper()
	b, err := certs.New(certs.Options{DNSNames: []string{"staticroute-webhook.staticroute-system.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir, b.CA
}

// StartWebhook runs the real webhook binary, as the webhook's
// ServiceAccount, and waits until the API server gets answers from it.
func StartWebhook(t tb.T, cp *ControlPlane, certDir string, args ...string) *Webhook {
	t.Helper()
	kc := cp.UserKubeconfig(t, WebhookServiceAccount)
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	fwd := freeAddr(t)
	b, err := os.ReadFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	// The API server's certificate names 127.0.0.1: the forwarder listens
	// there too, on another port.
	if err := os.WriteFile(kc, bytes.ReplaceAll(b, []byte(u.Host), []byte(fwd)), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &Webhook{cp: cp, CertDir: certDir, args: args, kc: kc, API: netlab.Forward(t, nil, fwd, u.Host)}
	w.Restart(t)
	return w
}

// Restart starts the webhook again (after Stop).
func (w *Webhook) Restart(t tb.T) {
	t.Helper()
	w.probeAddr = freeAddr(t)
	host, port, _ := net.SplitHostPort(WebhookAddr)
	all := append([]string{
		"--kubeconfig", w.kc,
		"--cert-dir", w.CertDir,
		"--webhook-host", host, "--webhook-port", port,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", w.probeAddr,
		// Called directly, not through a Service whose endpoints lag a
		// stopping pod: a test that stops it wants it gone at once.
		"--shutdown-delay", "0",
	}, w.args...)
	w.Process = Start(t, Bin(t, "webhook"), all...)
	w.waitReady(t)
}

// StartSandboxedWebhook runs the webhook of a release image under runc
// (RunSandboxed) with box's Pod, in the test's own network namespace: the
// API server calls it at WebhookAddr, and it reaches the API server
// through the returned Webhook's API forwarder, as a Pod through its
// Service. The certificate folder is mounted as the Pod's certs volume.
func StartSandboxedWebhook(t tb.T, cp *ControlPlane, certDir string, box Sandbox) *Webhook {
	t.Helper()
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	fwd := freeAddr(t)
	w := &Webhook{cp: cp, CertDir: certDir, API: netlab.Forward(t, nil, fwd, u.Host), probeAddr: freeAddr(t)}
	// The Secret's files, as a kubelet mounts them: readable by the
	// webhook's non-root user.
	for _, p := range []string{certDir, filepath.Join(certDir, certs.CertFile), filepath.Join(certDir, certs.KeyFile), filepath.Join(certDir, certs.CAFile)} {
		mode := os.FileMode(0o644)
		if p == certDir {
			mode = 0o755
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(WebhookAddr)
	box.Args = append(box.Args, "--webhook-host="+host, "--webhook-port="+port, "--metrics-bind-address=0", "--health-probe-bind-address="+w.probeAddr)
	box.APIServer = fwd
	box.CA = string(cp.Config.CAData)
	box.Namespace = "staticroute-system"
	r := cp.Kubectl(context.Background(), nil, "create", "token", "staticroute-webhook", "-n", "staticroute-system", "--duration", "2h")
	if r.Err != nil {
		t.Fatalf("token for the webhook: %v\n%s", r.Err, r.Stderr)
	}
	box.Token = strings.TrimSpace(r.Stdout)
	if box.Volumes == nil {
		box.Volumes = map[string]string{}
	}
	box.Volumes["certs"] = certDir
	w.Process = RunSandboxed(t, "staticroute-e2e-webhook", box)
	w.waitReady(t)
	return w
}

// waitReady waits until the webhook is ready and the API server gets
// answers from it.
func (w *Webhook) waitReady(t tb.T) {
	t.Helper()
	err := Eventually(context.Background(), 30*time.Second, func() error {
		if w.Exited() {
			return fmt.Errorf("webhook exited:\n%s", w.Output())
		}
		resp, err := http.Get("http://" + w.probeAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		// The API server must reach it over TLS with the injected CA: a
		// server-side dry run goes through admission and stores nothing.
		r := w.cp.Kubectl(context.Background(), []byte(probeRoute), "create", "--dry-run=server", "-f", "-")
		// The probe passes the CRD's rules, so "is invalid" comes from
		// the webhook's own judgement.
		if r.Err != nil && !strings.Contains(r.Stderr, "denied the request") && !strings.Contains(r.Stderr, "is invalid") {
			return fmt.Errorf("dry-run create: %s", strings.TrimSpace(r.Stderr))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("webhook not ready: %v", err)
	}
}

// probeRoute is what the readiness probe dry-runs: any answer from the
// webhook, admitted or denied, shows the API server reaches it.
const probeRoute = `apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: readiness-probe}
spec:
  destinations: ["198.51.100.250"]
  gateway: "10.116.0.4"
`

func freeAddr(t tb.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
