package main

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/staticroute/staticroute/internal/router"
)

// A port alone is served on loopback and the node's VPC address, never on
// every address; an explicit host is taken as it is.
func TestListenAddrs(t *testing.T) {
	vpc := netip.MustParseAddr("198.51.100.10")
	for addr, want := range map[string]string{
		"0":            "",
		"":             "",
		":9402":        "127.0.0.1:9402 198.51.100.10:9402",
		"0.0.0.0:9402": "0.0.0.0:9402",
		"[::1]:9403":   "[::1]:9403",
	} {
		got, err := listenAddrs(addr, vpc)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%q: %v %v, want %s", addr, got, err, want)
		}
	}
	if got, _ := listenAddrs(":9403", netip.Addr{}); strings.Join(got, " ") != "127.0.0.1:9403" {
		t.Errorf("no VPC address known: %v, want loopback only", got)
	}
	if _, err := listenAddrs("9402", vpc); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("a port without its colon: %v, want an error saying the form", err)
	}
}

// /healthz fails once the loop has finished no reconcile for too long,
// so that the kubelet restarts a wedged router; /readyz waits for the
// first lists.
func TestProbesHandler(t *testing.T) {
	var synced atomic.Bool
	var hb router.Heartbeat
	h := probesHandler(&synced, &hb, time.Minute)
	get := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if get("/healthz") != http.StatusOK || get("/readyz") != http.StatusServiceUnavailable {
		t.Fatal("before the first lists: want healthy and not ready")
	}
	synced.Store(true)
	hb.Beat(time.Now())
	if get("/healthz") != http.StatusOK || get("/readyz") != http.StatusOK {
		t.Fatal("a loop that just reconciled: want healthy and ready")
	}
	hb.Beat(time.Now().Add(-2 * time.Minute))
	if code := get("/healthz"); code != http.StatusInternalServerError {
		t.Fatalf("no reconcile for 2 minutes: /healthz %d, want 500", code)
	}
}
