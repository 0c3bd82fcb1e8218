// Package serve runs the binaries' HTTP servers (metrics, probes, pprof,
// admission) with every timeout bounded: a client that opens connections
// and sends nothing, or sends slowly, holds none for long.
package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-logr/logr"
)

// NewServer is an http.Server for h with bounded header, read and idle
// times. No write timeout: a CPU profile or trace (pprof) streams for as
// long as it was asked.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 1 << 16}
}

// Listen binds every address of addrs, or none: a taken port fails
// before anything is served.
func Listen(addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Run serves srv on every listener until ctx ends, then shuts it down
// within grace; it returns at once.
func Run(ctx context.Context, log logr.Logger, srv *http.Server, lns []net.Listener, grace time.Duration) {
	for _, ln := range lns {
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "serving stopped", "address", ln.Addr().String())
			}
		}()
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = srv.Shutdown(shutdown) // exiting anyway
	}()
}

// Pprof serves net/http/pprof's handlers under /debug/pprof/.
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
