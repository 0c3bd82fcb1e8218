package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"

	"github.com/staticroute/staticroute/test/tb"
)

// SpanCollector is an OTLP/gRPC trace receiver on loopback that keeps the
// durations of the spans it is told to watch, by name: the API server's
// own timing of what it does, such as each call of a validating webhook
// ("Call validating webhook").
type SpanCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	Addr string

	mu    sync.Mutex
	names map[string]bool
	spans map[string][]Span
}

// Span is one span received: how long it took and its string attributes.
type Span struct {
	Duration time.Duration
	Attrs    map[string]string
}

// StartSpanCollector listens on a free loopback port until cleanup and
// keeps the spans named names.
func StartSpanCollector(t tb.T, names ...string) *SpanCollector {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &SpanCollector{Addr: l.Addr().String(), names: map[string]bool{}, spans: map[string][]Span{}}
	for _, n := range names {
		c.names[n] = true
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(l) }() // returns when stopped
	t.Cleanup(srv.Stop)
	return c
}

// Export takes one batch of spans from the API server.
func (c *SpanCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if !c.names[s.GetName()] || s.GetEndTimeUnixNano() < s.GetStartTimeUnixNano() {
					continue
				}
				sp := Span{Duration: time.Duration(s.GetEndTimeUnixNano() - s.GetStartTimeUnixNano()), Attrs: map[string]string{}}
				for _, a := range s.GetAttributes() {
					if v, ok := a.GetValue().GetValue().(*commonv1.AnyValue_StringValue); ok {
						sp.Attrs[a.GetKey()] = v.StringValue
					}
				}
				c.spans[s.GetName()] = append(c.spans[s.GetName()], sp)
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Take returns the spans named name received so far, and forgets them.
func (c *SpanCollector) Take(name string) []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.spans[name]
	delete(c.spans, name)
	return d
}

// TracingFlag is the kube-apiserver flag that sends its spans to c, every
// request that arrives with a sampled trace context and no other: a
// client chooses which of its requests are traced (TraceParent).
func (c *SpanCollector) TracingFlag(t tb.T) Flag {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tracing.yaml")
	config := "apiVersion: apiserver.config.k8s.io/v1\nkind: TracingConfiguration\nendpoint: " + c.Addr + "\nsamplingRatePerMillion: 0\n"
	if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return Flag{Name: "tracing-config-file", Value: p}
}

// TraceParent wraps a client's transport so that each of its requests
// carries a new, sampled W3C trace context: the API server, with
// TracingFlag, traces exactly those. (It honours a client's context only
// from system:masters, as the control plane's administrator is.)
func TraceParent(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		var id [24]byte
		_, _ = rand.Read(id[:]) // never fails (crypto/rand)
		r = r.Clone(r.Context())
		r.Header.Set("traceparent", "00-"+hex.EncodeToString(id[:16])+"-"+hex.EncodeToString(id[16:])+"-01")
		return rt.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
