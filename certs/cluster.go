package certs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Cluster says where the webhook's certificates live in a cluster without
// cert-manager.
type Cluster struct {
	Namespace string // of the webhook's Service and both Secrets
	CASecret  string // the CA: tls.crt, tls.key, and ca.crt, every CA trusted
	Secret    string // the serving certificate: tls.crt, tls.key, ca.crt
	Service   string // the webhook's Service: the certificate names it
	Webhook   string // the ValidatingWebhookConfiguration to trust the CAs
}

// ServiceNames are the DNS names the API server may dial the Service by.
func (c Cluster) ServiceNames() []string {
	return []string{c.Service + "." + c.Namespace + ".svc", c.Service + "." + c.Namespace + ".svc.cluster.local"}
}

// Rotate does cert-manager's job for one pass, as a CronJob runs it:
// it reads both Secrets and the webhook configuration, plans with
// PlanRotation and writes what the plan says, the CA Secret first, then
// the webhook configuration's caBundle, then the serving Secret. Every
// write is conditional on what was read (resourceVersion), so two passes
// at once cannot both win: the loser fails and its Job retries. It says
// what it did.
func Rotate(ctx context.Context, cs kubernetes.Interface, c Cluster, p Policy, now time.Time) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	secrets := cs.CoreV1().Secrets(c.Namespace)
	caSecret, err := getSecret(ctx, cs, c.Namespace, c.CASecret)
	if err != nil {
		return "", err
	}
	serving, err := getSecret(ctx, cs, c.Namespace, c.Secret)
	if err != nil {
		return "", err
	}
	vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, c.Webhook, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", c.Webhook, err)
	}
	if len(vwc.Webhooks) == 0 {
		return "", fmt.Errorf("ValidatingWebhookConfiguration %s has no webhooks", c.Webhook)
	}
	seen := seenIn(c, caSecret, serving, vwc)
	plan := PlanRotation(seen, p, now)
	out, err := plan.Carry(seen, p, now)
	if err != nil {
		return "", err
	}
	trust := EncodeCerts(out.Trust)
	if plan.NewCA || caSecret == nil || string(caSecret.Data[CAFile]) != string(trust) {
		if err := putSecret(ctx, secrets, caSecret, c.Namespace, c.CASecret, out.CA, trust); err != nil {
			return "", err
		}
	}
	if plan.WriteTrust {
		if err := writeTrust(ctx, cs, vwc, trust); err != nil {
			return "", err
		}
	}
	if plan.Issue || serving == nil || string(serving.Data[CAFile]) != string(trust) {
		if err := putSecret(ctx, secrets, serving, c.Namespace, c.Secret, out.Serving, trust); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s: %s (serving certificate valid until %s)", c.Namespace, plan, out.Serving.Cert.NotAfter.UTC().Format(time.RFC3339)), nil
}

// seenIn is what the two Secrets and the webhook configuration hold, as
// PlanRotation reads it.
func seenIn(c Cluster, caSecret, serving *corev1.Secret, vwc *admissionv1.ValidatingWebhookConfiguration) Seen {
	var seen Seen
	seen.CA, seen.CAProblem = readPair(caSecret, "the CA Secret "+c.Namespace+"/"+c.CASecret)
	seen.Serving, seen.ServingProblem = readPair(serving, "the serving Secret "+c.Namespace+"/"+c.Secret)
	for _, s := range []*corev1.Secret{caSecret, serving} {
		if s == nil {
			continue
		}
		// An unreadable bundle trusts nothing more: the CA Secret's own
		// certificate and the plan's choices still hold.
		if cas, err := ParseCerts(s.Data[CAFile]); err == nil {
			seen.Trust = append(seen.Trust, cas...)
		}
	}
	for _, h := range vwc.Webhooks {
		cas, _ := ParseCerts(h.ClientConfig.CABundle)
		seen.Trusted = append(seen.Trusted, cas)
	}
	return seen
}

// writeTrust gives every webhook of the configuration the bundle, unless
// another writer changed the configuration since it was read (the
// patch's test of its resourceVersion).
func writeTrust(ctx context.Context, cs kubernetes.Interface, vwc *admissionv1.ValidatingWebhookConfiguration, trust []byte) error {
	patch := []map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": vwc.ResourceVersion}}
	for i := range vwc.Webhooks {
		patch = append(patch, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": trust})
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, vwc.Name, types.JSONPatchType, body, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("writing the CA bundle into ValidatingWebhookConfiguration %s: %w", vwc.Name, err)
	}
	return nil
}

func getSecret(ctx context.Context, cs kubernetes.Interface, ns, name string) (*corev1.Secret, error) {
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s/%s: %w", ns, name, err)
	}
	return s, nil
}

// readPair is a Secret's certificate and key, or why there is none.
func readPair(s *corev1.Secret, what string) (*KeyPair, string) {
	if s == nil {
		return nil, ""
	}
	kp, err := ParseKeyPair(s.Data[CertFile], s.Data[KeyFile])
	if err != nil {
		return nil, fmt.Sprintf("%s holds no usable %s and %s: %v", what, CertFile, KeyFile, err)
	}
	return kp, ""
}

// putSecret creates the Secret, or updates the one read (old) in place,
// failing if it changed since.
func putSecret(ctx context.Context, secrets interface {
	Create(context.Context, *corev1.Secret, metav1.CreateOptions) (*corev1.Secret, error)
	Update(context.Context, *corev1.Secret, metav1.UpdateOptions) (*corev1.Secret, error)
}, old *corev1.Secret, ns, name string, kp *KeyPair, trust []byte) error {
	data := map[string][]byte{CertFile: kp.CertPEM, KeyFile: kp.KeyPEM, CAFile: trust}
	if old == nil {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "staticroute-certs"}},
			Type:       corev1.SecretTypeTLS,
			Data:       data,
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Secret %s/%s: %w", ns, name, err)
		}
		return nil
	}
	s := old.DeepCopy()
	s.Data = data
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating Secret %s/%s: %w", ns, name, err)
	}
	return nil
}
