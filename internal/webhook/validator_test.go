package webhook

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func TestValidator(t *testing.T) {
	store := NewStore(0)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, store)
	if err != nil {
		t.Fatal(err)
	}
	v := &Validator{Layout: Fixed(cfg()), Store: store, Metrics: m}
	ctx := context.Background()

	if _, err := v.ValidateCreate(ctx, sr("a", "", "10.116.0.4", "203.0.113.0/24")); err != nil {
		t.Fatalf("valid create rejected: %v", err)
	}
	_, err = v.ValidateCreate(ctx, sr("b", "", "198.51.100.1", "0.0.0.0"))
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid status error, got %v", err)
	}
	for _, want := range []string{"spec.gateway", "spec.destinations[0]", "did you mean 0.0.0.0/0?"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	old := sr("legacy", "", "10.116.0.4", "not-an-address")
	now := old.DeepCopy()
	now.Finalizers = nil
	if _, err := v.ValidateUpdate(ctx, old, now); err != nil {
		t.Errorf("an update that leaves spec unchanged was judged: %v", err)
	}
	now.Spec.Gateway = "10.116.0.12"
	if _, err := v.ValidateUpdate(ctx, old, now); err == nil {
		t.Error("a gateway change was admitted")
	}

	if n := testutil.CollectAndCount(m.Duration); n != 3 {
		t.Errorf("%d duration series, want 3 (create admitted, create rejected, update rejected)", n)
	}
}
