package framework

import (
	"context"
	"maps"
	"net/http"
	"regexp"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

func TestSpanCollectorKeepsOnlyTheNamedSpans(t *testing.T) {
	c := StartSpanCollector(t, "Call validating webhook")
	span := func(name string, d time.Duration) *tracev1.Span {
		return &tracev1.Span{Name: name, StartTimeUnixNano: 1e9, EndTimeUnixNano: 1e9 + uint64(d), Attributes: []*commonv1.KeyValue{
			{Key: "webhook", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "vstaticroute"}}},
			{Key: "count", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 3}}},
		}}
	}
	req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{
			span("Call validating webhook", 2*time.Millisecond),
			span("KubernetesAPI", 9*time.Millisecond),
			span("Call validating webhook", 700*time.Microsecond),
		}}},
	}}}
	if _, err := c.Export(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got := c.Take("Call validating webhook")
	if len(got) != 2 || got[0].Duration != 2*time.Millisecond || got[1].Duration != 700*time.Microsecond {
		t.Fatalf("got %v, want spans of 2ms and 700µs", got)
	}
	if want := map[string]string{"webhook": "vstaticroute"}; !maps.Equal(got[0].Attrs, want) {
		t.Errorf("attributes %v, want %v (strings only)", got[0].Attrs, want)
	}
	if again := c.Take("Call validating webhook"); len(again) != 0 {
		t.Errorf("Take kept %v", again)
	}
}

func TestTraceParentSendsANewSampledContextEachTime(t *testing.T) {
	var seen []string
	rt := TraceParent(roundTripper(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r.Header.Get("traceparent"))
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	}))
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1/", nil)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if req.Header.Get("traceparent") != "" {
			t.Error("the caller's request was changed")
		}
	}
	valid := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)
	for _, h := range seen {
		if !valid.MatchString(h) {
			t.Errorf("traceparent %q is not a sampled W3C trace context", h)
		}
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("want two different contexts, got %v", seen)
	}
}
