// Package certs makes the admission webhook's CA and serving certificate,
// renews both before they expire, and writes the CAs to trust into a
// ValidatingWebhookConfiguration's caBundle: what cert-manager does in a
// cluster, for clusters without it, the demo and the tests.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside a cert dir: the layout of a cert-manager Secret, which
// the webhook reads the same way in a cluster.
const (
	CAFile   = "ca.crt"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Default lifetimes where nothing else is said: a serving certificate
// for a year, its CA for five. Rotate renews each when a third of it is
// left.
const (
	DefaultValidity   = 365 * 24 * time.Hour
	DefaultCAValidity = 5 * DefaultValidity
)

// Bundle is a CA and a serving certificate signed by it, PEM-encoded.
type Bundle struct {
	CA   []byte
	Cert []byte
	Key  []byte
}

// Options say whom the serving certificate is for.
type Options struct {
	DNSNames []string
	IPs      []net.IP
	Validity time.Duration // default DefaultValidity
	Now      func() time.Time
}

// KeyPair is a certificate with its private key, parsed and as PEM.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// New makes a fresh CA and a serving certificate for opts, both valid for
// opts.Validity.
func New(opts Options) (*Bundle, error) {
	if len(opts.DNSNames) == 0 && len(opts.IPs) == 0 {
		return nil, fmt.Errorf("certs: give at least one DNS name or IP address for the serving certificate")
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultValidity
	}
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	ca, err := NewCA(now, opts.Validity)
	if err != nil {
		return nil, err
	}
	leaf, err := Issue(ca, now, opts.Validity, opts.DNSNames, opts.IPs)
	if err != nil {
		return nil, err
	}
	return &Bundle{CA: ca.CertPEM, Cert: leaf.CertPEM, Key: leaf.KeyPEM}, nil
}

// NewCA makes a self-signed CA valid from now for validity.
func NewCA(now time.Time, validity time.Duration) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "staticroute-webhook-ca", SerialNumber: now.UTC().Format("20060102T150405Z")},
		NotBefore:             backdated(now, validity),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return sign(tmpl, tmpl, key, key)
}

// Issue makes a serving certificate for dnsNames and ips signed by ca,
// valid from now for validity but never past the CA itself.
func Issue(ca *KeyPair, now time.Time, validity time.Duration, dnsNames []string, ips []net.IP) (*KeyPair, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, fmt.Errorf("certs: give at least one DNS name or IP address for the serving certificate")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: serving key: %w", err)
	}
	cn := "staticroute-webhook"
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    backdated(now, validity),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return sign(tmpl, ca.Cert, key, ca.Key)
}

// backdated is when a certificate made now starts: an hour earlier, to
// tolerate clocks behind ours, or a tenth of a short lifetime.
func backdated(now time.Time, validity time.Duration) time.Time {
	return now.Add(-min(time.Hour, validity/10))
}

func sign(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (*KeyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, fmt.Errorf("certs: signing %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: signing %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: key of %q: %w", tmpl.Subject.CommonName, err)
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// WriteDir writes the bundle into dir. The key is written last and renamed
// into place, so a webhook watching dir never reads a certificate without
// its key.
func (b *Bundle) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{CAFile, b.CA, 0o644}, {CertFile, b.Cert, 0o644}, {KeyFile, b.Key, 0o600}} {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return fmt.Errorf("certs: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return fmt.Errorf("certs: %w", err)
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a fixed serial is still a
		// valid certificate.
		return big.NewInt(1)
	}
	return n
}
