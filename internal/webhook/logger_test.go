package webhook

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func TestARejectionIsLoggedWithTheRouteTheRequestAndTheUser(t *testing.T) {
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "4f1c", Name: "b", Operation: admissionv1.Create,
		UserInfo: authenticationv1.UserInfo{Username: "alice"},
	}}
	ctx := logf.IntoContext(admission.NewContextWithRequest(context.Background(), req), LogConstructor(base, &req))

	v := &Validator{Layout: Fixed(cfg()), Store: NewStore(0)}
	if _, err := v.ValidateCreate(ctx, sr("b", "", "198.51.100.1", "0.0.0.0")); err == nil {
		t.Fatal("an invalid route was admitted")
	}
	if len(lines) != 1 {
		t.Fatalf("%d lines logged, want 1: %q", len(lines), lines)
	}
	for _, want := range []string{`"staticroute"="b"`, `"requestID"="4f1c"`, `"user"="alice"`, `"errors"=2`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the rejection's log line %s lacks %s", lines[0], want)
		}
	}
	if got := LogConstructor(base, nil); got != base {
		t.Error("without a request the base logger must be used as it is")
	}
}
