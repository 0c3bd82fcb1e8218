package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/staticroute/staticroute/internal/router"
	httpserve "github.com/staticroute/staticroute/internal/serve"
)

// serve serves h on addr until ctx ends; "0" or "" serves nothing. An
// address without a host (":9402") is served on the node's VPC address
// and on loopback only (listenAddrs): the router runs on the host's
// network, and its metrics name every gateway and probe target. The
// addresses are bound before it returns, so a taken port fails the start.
func serve(ctx context.Context, log logr.Logger, addr string, vpcAddr netip.Addr, h http.Handler) error {
	addrs, err := listenAddrs(addr, vpcAddr)
	if err != nil || len(addrs) == 0 {
		return err
	}
	lns, err := httpserve.Listen(addrs)
	if err != nil {
		return err
	}
	httpserve.Run(ctx, log, httpserve.NewServer(h), lns, 5*time.Second)
	return nil
}

// listenAddrs are the addresses addr stands for: none for "0" or "";
// for a port alone (":9402"), the node's VPC address (if known) and
// 127.0.0.1; any other address as it is ("0.0.0.0:9402" listens on every
// address of the node).
func listenAddrs(addr string, vpcAddr netip.Addr) ([]string, error) {
	if addr == "0" || addr == "" {
		return nil, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: want HOST:PORT, :PORT or 0: %w", addr, err)
	}
	if host != "" {
		return []string{addr}, nil
	}
	out := []string{net.JoinHostPort("127.0.0.1", port)}
	if vpcAddr.IsValid() {
		out = append(out, net.JoinHostPort(vpcAddr.String(), port))
	}
	return out, nil
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// probesHandler answers /healthz while the process runs and /readyz once
// the caches hold the cluster's objects (the first reconcile follows).
// probesHandler serves /readyz (ready once synced) and /healthz, which
// fails when the reconcile loop has finished no reconcile within wedged
// (router.Heartbeat): the kubelet then restarts the router.
func probesHandler(synced *atomic.Bool, hb *router.Heartbeat, wedged time.Duration) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := hb.Check(time.Now(), wedged); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ok(w, r)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !synced.Load() {
			http.Error(w, "StaticRoutes, the Node and the API server's endpoints not loaded yet", http.StatusServiceUnavailable)
			return
		}
		ok(w, r)
	})
	return mux
}
