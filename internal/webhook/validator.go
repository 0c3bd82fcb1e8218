package webhook

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// Path is where the validator is served; config/webhook names it too.
const Path = "/validate-networking-digitalocean-com-v1-staticroute"

// Validator admits StaticRoutes that pkg/validate accepts.
type Validator struct {
	Layout  Layout
	Store   *Store
	Metrics *Metrics // optional
}

var _ admission.Validator[*v1.StaticRoute] = (*Validator)(nil)

// ValidateCreate checks a new route against the cluster and the other routes.
func (v *Validator) ValidateCreate(ctx context.Context, sr *v1.StaticRoute) (admission.Warnings, error) {
	return v.admit(ctx, sr, nil)
}

// ValidateUpdate checks a changed spec; an update that leaves spec as it is
// (finalizers, labels, the old operator's kopf annotations) always passes,
// so objects from before this webhook can still be cleaned up.
func (v *Validator) ValidateUpdate(ctx context.Context, old, sr *v1.StaticRoute) (admission.Warnings, error) {
	if equality.Semantic.DeepEqual(old.Spec, sr.Spec) {
		return nil, nil
	}
	return v.admit(ctx, sr, old)
}

// ValidateDelete admits every delete: deleting a member never breaks a rule.
func (v *Validator) ValidateDelete(context.Context, *v1.StaticRoute) (admission.Warnings, error) {
	return nil, nil
}

func (v *Validator) admit(ctx context.Context, sr, old *v1.StaticRoute) (admission.Warnings, error) {
	start := time.Now()
	op := "create"
	if old != nil {
		op = "update"
	}
	w, result, err := v.decide(ctx, sr, old)
	if v.Metrics != nil {
		v.Metrics.Duration.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
	}
	return w, err
}

func (v *Validator) decide(ctx context.Context, sr, old *v1.StaticRoute) (admission.Warnings, string, error) {
	log := logf.FromContext(ctx)
	dryRun, user := false, ""
	if req, err := admission.RequestFromContext(ctx); err == nil {
		dryRun = req.DryRun != nil && *req.DryRun
		user = req.UserInfo.Username
	}
	cfg, err := v.Layout.Config()
	if err != nil {
		return nil, "unavailable", apierrors.NewServiceUnavailable("the staticroute webhook cannot judge routes yet: " + err.Error())
	}
	res, ok := v.Store.Admit(ctx, cfg, sr, old, dryRun)
	if !ok {
		return nil, "unavailable", apierrors.NewServiceUnavailable("the staticroute webhook is still loading the existing StaticRoutes: try again in a few seconds")
	}
	if len(res.Errors) > 0 {
		log.Info("rejected", "user", user, "errors", len(res.Errors))
		return res.Warnings, "rejected", apierrors.NewInvalid(schema.GroupKind{Group: v1.GroupVersion.Group, Kind: "StaticRoute"}, sr.Name, res.Errors)
	}
	log.V(1).Info("admitted", "group", sr.EffectiveGroup(), "dryRun", dryRun, "warnings", len(res.Warnings))
	return res.Warnings, "admitted", nil
}
