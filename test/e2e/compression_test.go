package e2e

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/test/framework"
)

// TestWatchesAreNotCompressed: the API server (1.37) gzips a watch-list
// stream, event by event, for a client that accepts gzip, as client-go's
// does unless told not to; the router's and the webhook's clients
// (kube.Uncompressed) are told not to.
func TestWatchesAreNotCompressed(t *testing.T) {
	cp := framework.StartControlPlane(t)
	compressed := func(cfg *rest.Config) bool {
		t.Helper()
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		u, err := url.JoinPath(cfg.Host, "/api/v1/namespaces")
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("watch-list: %s", resp.Status)
		}
		// Go's transport takes the gzip off itself and says so here.
		return resp.Uncompressed
	}
	if !compressed(cp.Config) {
		t.Fatal("a plain client's watch-list stream came uncompressed: the API server no longer gzips it, and this test shows nothing")
	}
	if compressed(kube.Uncompressed(cp.Config)) {
		t.Error("kube.Uncompressed's watch-list stream came gzipped")
	}
}
