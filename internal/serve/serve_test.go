package serve

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// Every server the binaries run bounds how long a client may take to send
// its request and may keep an idle connection.
func TestNewServerBoundsEveryWait(t *testing.T) {
	srv := NewServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("unbounded: read header %s, read %s, idle %s, header bytes %d", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// Run serves on every listener and stops when the context ends; Listen
// binds all or nothing.
func TestRunServesAndStops(t *testing.T) {
	lns, err := Listen([]string{"127.0.0.1:0", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen([]string{"127.0.0.1:0", lns[0].Addr().String()}); err == nil {
		t.Fatal("binding a taken address succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	Run(ctx, logr.Discard(), NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })), lns, time.Second)
	for _, ln := range lns {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get("http://" + lns[0].Addr().String() + "/"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still serving 5 s after the context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
