package webhook

import (
	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// LogConstructor gives each admission request a logger that names the
// route and the request, for admission.Webhook.LogConstructor. The
// default one also adds the object reference, the resource and the user,
// which zap encodes by reflection at once, for every request, although
// an admitted route logs nothing at the default verbosity: that was a
// sixth of the handler's CPU. The route is cluster-scoped and the
// resource is always staticroutes; the user is named where a rejection is
// logged.
func LogConstructor(base logr.Logger, req *admission.Request) logr.Logger {
	if req == nil {
		return base
	}
	return base.WithValues("staticroute", req.Name, "requestID", string(req.UID))
}
