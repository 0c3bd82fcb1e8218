package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

func TestServingCertificateVerifiesAgainstItsCA(t *testing.T) {
	b, err := New(Options{DNSNames: []string{"staticroute-webhook.staticroute-system.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	for _, name := range []string{"staticroute-webhook.staticroute-system.svc", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err == nil {
		t.Error("the certificate verifies for a name it was not made for")
	}
	if fi, _ := os.Stat(filepath.Join(dir, KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestNewNeedsAName(t *testing.T) {
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "DNS name or IP") {
		t.Fatalf("err = %v", err)
	}
}

func TestInjectCABundle(t *testing.T) {
	in := `apiVersion: v1
kind: Service
metadata: {name: s}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: v}
webhooks:
- name: a.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {url: "https://127.0.0.1:9443/x"}
- name: b.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {url: "https://127.0.0.1:9443/y", caBundle: b2xk}
`
	out, err := InjectCABundle(strings.NewReader(in), []byte("PEM"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(out), "---\n")
	if len(docs) != 3 || !strings.Contains(docs[1], "kind: Service") {
		t.Fatalf("documents not passed through: %q", out)
	}
	var vwc admissionv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict([]byte(docs[2]), &vwc); err != nil {
		t.Fatal(err)
	}
	for _, h := range vwc.Webhooks {
		if string(h.ClientConfig.CABundle) != "PEM" {
			t.Errorf("%s: caBundle %q", h.Name, h.ClientConfig.CABundle)
		}
	}
}

func TestInjectCABundleNeedsAWebhookConfiguration(t *testing.T) {
	_, err := InjectCABundle(strings.NewReader("kind: Service\nmetadata: {name: s}\n"), []byte("PEM"))
	if err == nil || !strings.Contains(err.Error(), "no webhook configuration") {
		t.Fatalf("err = %v", err)
	}
}
