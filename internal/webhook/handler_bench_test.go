package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// BenchmarkHandler serves one AdmissionReview of a route with ten
// destinations (a dry run: it reserves nothing) through controller-runtime's
// handler with the validator, 10,000 routes in the store, logging JSON to
// nowhere at the default level as the webhook does: with controller-runtime's
// default per-request logger and with ours.
func BenchmarkHandler(b *testing.B) {
	// The handler logs through controller-runtime's global logger.
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard), zap.JSONEncoder()))
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	store := NewStore(0)
	for i := range 10_000 {
		// A /32 of its own each, in 198.18.0.0/15.
		store.Upsert(sr(fmt.Sprintf("existing-%05d", i), "", "10.116.0.4", fmt.Sprintf("198.%d.%d.%d", 18+i>>16, i>>8&255, i&255)))
	}
	store.SetSynced(func() bool { return true })
	route := sr("measured", "", "10.116.0.4", "203.0.113.0", "203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4",
		"203.0.113.5", "203.0.113.6", "203.0.113.7", "203.0.113.8", "203.0.113.9")
	route.APIVersion, route.Kind = v1.GroupVersion.String(), "StaticRoute"
	raw, err := json.Marshal(route)
	if err != nil {
		b.Fatal(err)
	}
	dryRun := true
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "4f1c", Name: route.Name, Operation: admissionv1.Create, DryRun: &dryRun,
			Kind:     metav1.GroupVersionKind{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Kind: "StaticRoute"},
			Resource: metav1.GroupVersionResource{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Resource: "staticroutes"},
			Object:   runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		log  func(logr.Logger, *admission.Request) logr.Logger
	}{
		{"controller-runtime's logger", admission.DefaultLogConstructor},
		{"LogConstructor", LogConstructor},
	} {
		b.Run(c.name, func(b *testing.B) {
			hook := admission.WithValidator[*v1.StaticRoute](scheme, &Validator{Layout: Fixed(cfg()), Store: store})
			hook.LogConstructor = c.log
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				hook.ServeHTTP(w, r)
				if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"allowed":true`)) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
