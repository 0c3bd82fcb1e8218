package webhook

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/staticroute/staticroute/certs"
)

// The expiry metric is the serving certificate's notAfter, read at each
// scrape, so a renewed file shows at once; unreadable, it is 0.
func TestCertificateExpiry(t *testing.T) {
	dir, _ := certDir(t)
	file := filepath.Join(dir, certs.CertFile)
	g := CertificateExpiry(file)
	got := time.Unix(int64(testutil.ToFloat64(g)), 0)
	if left := time.Until(got); left < 300*24*time.Hour || left > 400*24*time.Hour {
		t.Fatalf("expires %s (in %s), want about a year from now (certs' default)", got, left)
	}
	if err := os.WriteFile(file, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(g); v != 0 {
		t.Fatalf("unreadable certificate: %v, want 0", v)
	}
}
