package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/staticroute/staticroute/internal/serve"
)

// Server serves admission over TLS as controller-runtime's
// webhook.DefaultServer does (a certificate reloaded when its files
// change), on an http.Server with every timeout bounded (serve.NewServer):
// controller-runtime's has no read timeout, and anyone who reaches the
// Service can open connections.
type Server struct {
	// Addr is host:port.
	Addr string
	// CertFile and KeyFile are the serving certificate and key.
	CertFile, KeyFile string
	TLSOpts           []func(*tls.Config)
	Log               logr.Logger

	mux     *http.ServeMux
	started atomic.Bool
}

var _ crwebhook.Server = (*Server)(nil)

// NewServer returns a server of the certificate and key in certDir.
func NewServer(addr, certDir, certName, keyName string, log logr.Logger, tlsOpts ...func(*tls.Config)) *Server {
	return &Server{Addr: addr, CertFile: filepath.Join(certDir, certName), KeyFile: filepath.Join(certDir, keyName), TLSOpts: tlsOpts, Log: log, mux: http.NewServeMux()}
}

// NeedLeaderElection: every replica admits.
func (s *Server) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *Server) Register(path string, hook http.Handler) { s.mux.Handle(path, hook) }

// WebhookMux is the server's mux.
func (s *Server) WebhookMux() *http.ServeMux { return s.mux }

// StartedChecker is healthy once the server listens.
func (s *Server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("the webhook server is not listening yet")
		}
		return nil
	}
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	cfg := &tls.Config{NextProtos: []string{"h2"}}
	for _, op := range s.TLSOpts {
		op(cfg)
	}
	watcher, err := certwatcher.New(s.CertFile, s.KeyFile)
	if err != nil {
		return err
	}
	cfg.GetCertificate = watcher.GetCertificate
	go func() {
		if err := watcher.Start(ctx); err != nil {
			s.Log.Error(err, "watching the serving certificate")
		}
	}()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	srv := serve.NewServer(s.mux)
	srv.TLSConfig = cfg
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	s.started.Store(true)
	s.Log.Info("serving admission", "address", s.Addr)
	if err := srv.Serve(tls.NewListener(ln, cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}
