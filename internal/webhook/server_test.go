package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/staticroute/staticroute/certs"
)

// The admission server serves its hooks over TLS with the certificate in
// its directory, says when it is started, and stops with its context.
func TestServerServesOverTLS(t *testing.T) {
	dir, b := certDir(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := NewServer(addr, dir, certs.CertFile, certs.KeyFile, logr.Discard(), func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 })
	s.Register("/hook", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "admitted") }))
	if s.StartedChecker()(nil) == nil {
		t.Fatal("started before Start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.CA)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	var body []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/hook")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "admitted" || s.StartedChecker()(nil) != nil {
		t.Fatalf("answer %q, started %v", body, s.StartedChecker()(nil))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop with its context")
	}
}

// certDir is a directory holding a fresh CA and a serving certificate
// for 127.0.0.1, valid a year, as certs writes them.
func certDir(t *testing.T) (string, *certs.Bundle) {
	t.Helper()
	dir := t.TempDir()
	b, err := certs.New(certs.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir, b
}
