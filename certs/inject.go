package certs

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// InjectCABundle reads a stream of YAML documents and sets caBundle on every
// webhook of each ValidatingWebhookConfiguration (and
// MutatingWebhookConfiguration) in it; other documents pass through
// unchanged. It is what cert-manager's cainjector does in a cluster.
func InjectCABundle(in io.Reader, caPEM []byte) ([]byte, error) {
	if len(bytes.TrimSpace(caPEM)) == 0 {
		return nil, fmt.Errorf("certs: the CA bundle is empty")
	}
	bundle := base64.StdEncoding.EncodeToString(caPEM)
	dec := utilyaml.NewYAMLOrJSONDecoder(in, 4096)
	var out bytes.Buffer
	found := 0
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("certs: reading manifests: %w", err)
		}
		if obj == nil {
			continue
		}
		u := unstructured.Unstructured{Object: obj}
		if k := u.GetKind(); k == "ValidatingWebhookConfiguration" || k == "MutatingWebhookConfiguration" {
			hooks, _, err := unstructured.NestedSlice(obj, "webhooks")
			if err != nil {
				return nil, fmt.Errorf("certs: %s %s: %w", k, u.GetName(), err)
			}
			for i := range hooks {
				h, ok := hooks[i].(map[string]any)
				if !ok {
					return nil, fmt.Errorf("certs: %s %s: webhooks[%d] is not an object", k, u.GetName(), i)
				}
				if err := unstructured.SetNestedField(h, bundle, "clientConfig", "caBundle"); err != nil {
					return nil, fmt.Errorf("certs: %s %s: webhooks[%d]: %w", k, u.GetName(), i, err)
				}
				found++
			}
			if err := unstructured.SetNestedSlice(obj, hooks, "webhooks"); err != nil {
				return nil, fmt.Errorf("certs: %s %s: %w", k, u.GetName(), err)
			}
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		out.WriteString("---\n")
		out.Write(y)
	}
	if found == 0 {
		return nil, fmt.Errorf("certs: no webhook configuration in the manifests: nothing to inject the CA into")
	}
	return out.Bytes(), nil
}
