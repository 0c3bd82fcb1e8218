package webhook

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CertificateExpiry is the serving certificate's notAfter, read from its
// file at every scrape (the file a cert-manager Secret or `certs rotate`
// fills, reloaded by the server as it changes): 0 when it
// cannot be read, which an alert on the time left treats as expired.
func CertificateExpiry(certFile string) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "staticroute_webhook_certificate_expiry_timestamp_seconds",
		Help: "When the webhook's serving certificate expires (its notAfter, Unix seconds); 0 if it cannot be read. Without cert-manager nothing renews it: alert well before.",
	}, func() float64 {
		t, err := certNotAfter(certFile)
		if err != nil {
			return 0
		}
		return float64(t.Unix())
	})
}

// certNotAfter is the notAfter of the first certificate in the PEM file.
func certNotAfter(file string) (time.Time, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return time.Time{}, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return time.Time{}, errors.New("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", file, err)
	}
	return c.NotAfter, nil
}
