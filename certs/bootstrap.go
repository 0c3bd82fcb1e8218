package certs

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Cluster says where the webhook's certificate lives in a cluster without
// cert-manager.
type Cluster struct {
	Namespace string // of the webhook's Service and Secret
	Secret    string // the serving certificate: tls.crt, tls.key, ca.crt
	Service   string // the webhook's Service: the certificate names it
	Webhook   string // the ValidatingWebhookConfiguration to trust the CA
}

// Bootstrap does cert-manager's job once, as a Job can: it makes the
// Secret with a CA and a serving certificate for the Service if there is
// none (an existing one is kept: run it again at any time), and writes
// that CA into every webhook of the configuration. It says what it did.
func Bootstrap(ctx context.Context, cs kubernetes.Interface, c Cluster) (string, error) {
	secrets := cs.CoreV1().Secrets(c.Namespace)
	s, err := secrets.Get(ctx, c.Secret, metav1.GetOptions{})
	did := "kept Secret " + c.Namespace + "/" + c.Secret
	switch {
	case apierrors.IsNotFound(err):
		b, err := New(Options{DNSNames: []string{
			c.Service + "." + c.Namespace + ".svc",
			c.Service + "." + c.Namespace + ".svc.cluster.local",
		}})
		if err != nil {
			return "", err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: c.Secret, Namespace: c.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "staticroute-certs"}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{CertFile: b.Cert, KeyFile: b.Key, CAFile: b.CA},
		}
		if s, err = secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("creating Secret %s/%s: %w", c.Namespace, c.Secret, err)
		}
		did = "created Secret " + c.Namespace + "/" + c.Secret + " (a new CA and a serving certificate for " + c.Service + "." + c.Namespace + ".svc)"
	case err != nil:
		return "", fmt.Errorf("reading Secret %s/%s: %w", c.Namespace, c.Secret, err)
	}
	ca := s.Data[CAFile]
	if len(ca) == 0 {
		return "", fmt.Errorf("the Secret %s/%s has no %s: delete it and run again to make a new one", c.Namespace, c.Secret, CAFile)
	}
	vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, c.Webhook, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", c.Webhook, err)
	}
	var patch []map[string]any
	for i := range vwc.Webhooks {
		patch = append(patch, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": ca})
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return "", err
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, c.Webhook, types.JSONPatchType, body, metav1.PatchOptions{}); err != nil {
		return "", fmt.Errorf("writing the CA into ValidatingWebhookConfiguration %s: %w", c.Webhook, err)
	}
	return did + "; wrote its CA into ValidatingWebhookConfiguration " + c.Webhook, nil
}
