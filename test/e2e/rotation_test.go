package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
)

// Without cert-manager, `certs rotate` (the release's CronJob, as the
// certs ServiceAccount) renews the serving certificate and the CA before
// they expire, and admission never stops: a serving certificate valid
// 30 s and a CA valid 75 s, rotated every 2 s over 70 s (the first
// certificate expires at 30 s, the first CA is replaced at 50 s), with
// dry-run creates through the API server and the webhook all along and a
// fresh TLS handshake, as a new API server connection makes, every
// 200 ms.
func TestCertificateRotation(t *testing.T) {
	framework.RequireRoot(t)
	cp := framework.StartControlPlane(t)
	// A configuration that trusts some other CA: rotate's first pass
	// replaces it, as on a cluster that had a hand-made one.
	_, foreign := framework.NewWebhookCerts(t)
	cp.Install(t, foreign)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	rbac, err := os.ReadFile(filepath.Join(root, "config", "without-cert-manager", "certs-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(rbac, []byte("\n---\n")) {
		if !bytes.Contains(d, []byte("kind: Job")) && !bytes.Contains(d, []byte("kind: CronJob")) {
			docs = append(docs, d)
		}
	}
	cp.MustKubectl(t, bytes.Join(docs, []byte("\n---\n")), "apply", "-f", "-")
	kc := cp.UserKubeconfig(t, "system:serviceaccount:staticroute-system:staticroute-certs")
	rotate := func() error {
		// What the CronJob runs, less the Pod: the Service's names and
		// the address config/test calls the webhook at.
		out, err := exec.Command(framework.Bin(t, "certs"), "rotate", "--kubeconfig", kc,
			"--namespace=staticroute-system", "--validity=30s", "--ca-validity=75s", "--ip=127.0.0.1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("certs rotate: %v\n%s", err, out)
		}
		return nil
	}
	cs := cp.Clientset(t)
	certDir := t.TempDir()
	project := func() error { // the kubelet's part
		s, err := cs.CoreV1().Secrets("staticroute-system").Get(context.Background(), "staticroute-webhook-serving", metav1.GetOptions{})
		if err != nil {
			return err
		}
		return framework.ProjectFiles(certDir, s.Data)
	}
	if err := rotate(); err != nil {
		t.Fatal(err)
	}
	if err := project(); err != nil {
		t.Fatal(err)
	}
	framework.StartWebhook(t, cp, certDir, worldFlags...)

	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var admitted, refused atomic.Int64
	var mu sync.Mutex
	var problems []string
	problem := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	c := cp.Client(t)
	wg.Add(1)
	go func() { // admission all along
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			r := &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r-%d", i)}, Spec: v1.StaticRouteSpec{Destinations: []string{"203.0.113.7"}, Gateway: "198.51.100.5"}}
			// Not ctx: its deadline would fail a request waiting on the
			// client's rate limiter at the very end, a refusal of nobody's.
			if err := c.Create(context.Background(), r, client.DryRunAll); err != nil && ctx.Err() == nil {
				refused.Add(1)
				problem("%s refused: %v", time.Now().Format("15:04:05.000"), err)
			} else if err == nil {
				admitted.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	served := map[string]*x509.Certificate{}
	var handshakes, failed int
	cron, kubelet, probe := time.NewTicker(2*time.Second), time.NewTicker(time.Second), time.NewTicker(200*time.Millisecond)
	defer cron.Stop()
	defer kubelet.Stop()
	defer probe.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-cron.C:
			if err := rotate(); err != nil {
				problem("%v", err)
			}
		case <-kubelet.C:
			if err := project(); err != nil {
				problem("projecting the Secret: %v", err)
			}
		case <-probe.C:
			handshakes++
			leaf, err := handshake(cs)
			if err != nil {
				failed++
				problem("%s handshake: %v", time.Now().Format("15:04:05.000"), err)
				continue
			}
			served[string(leaf.Raw)] = leaf
		}
	}
	wg.Wait()
	issuers := map[string]bool{}
	for _, c := range served {
		issuers[string(c.AuthorityKeyId)] = true
	}
	t.Logf("%d admitted, %d refused; %d handshakes, %d failed; %d serving certificates from %d CAs served", admitted.Load(), refused.Load(), handshakes, failed, len(served), len(issuers))
	if refused.Load() > 0 || failed > 0 || len(problems) > 0 {
		t.Errorf("admission stopped while certificates rotated:\n%s", strings.Join(problems, "\n"))
	}
	if admitted.Load() == 0 || len(served) < 3 || len(issuers) < 2 {
		t.Errorf("want admissions, at least 3 serving certificates and 2 CAs served in 70 s")
	}
}

// handshake connects to the webhook as a new API server connection does,
// trusting what the webhook configuration says now, and returns the
// certificate it was served.
func handshake(cs kubernetes.Interface) (*x509.Certificate, error) {
	vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), "staticroute-validating", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(vwc.Webhooks[0].ClientConfig.CABundle) {
		return nil, fmt.Errorf("the caBundle holds no certificate")
	}
	conn, err := tls.Dial("tcp", framework.WebhookAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}
