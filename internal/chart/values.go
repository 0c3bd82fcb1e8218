package chart

import (
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// valuesHeader is values.yaml's values that are not a workload's.
const valuesHeader = `# Generated from config/ by ` + "`make chart`" + ` (internal/chart): the defaults
# are what dist/staticroute.yaml installs.

# The cluster's layout (layout.yaml of the ConfigMap staticroute-layout):
# vpcCIDRs, podCIDRs, serviceCIDRs, apiServerAddresses, each a list. Leave
# out what the cluster knows: each router takes the VPC from its node's
# address, both read the pod ranges from the Nodes' spec.podCIDRs and the
# Service ranges from the ServiceCIDR objects. A value set wins.
layout: {}

image:
  registry: ghcr.io/staticroute
  # Default: the chart's appVersion.
  tag: ""
  # sha256 digests pin each image (make release writes them into the
  # packaged chart); empty: by tag only.
  digests:
    webhook: ""
    nodeRouter: ""
    certs: ""

# On: cert-manager (>= 1.19, with its CRDs) issues the webhook's
# certificate. Off: the certs Job and hourly CronJob make and renew it.
certManager:
  enabled: true

# Services and ServiceMonitors for the Prometheus Operator (its CRDs first).
metrics:
  serviceMonitor:
    enabled: false

# helm.sh/resource-policy: keep on the CRDs: helm uninstall leaves them,
# and with them every StaticRoute.
crds:
  keep: true

# The namespace, with the Pod Security label enforce=privileged (the
# router needs the host's network and NET_ADMIN). Helm stores a release in
# its namespace before it installs anything, so helm install needs the
# namespace first: kubectl create namespace, then kubectl label namespace
# NAME pod-security.kubernetes.io/enforce=privileged. True: the chart
# renders the Namespace too, for tools that apply what helm template
# renders (kubectl apply, Argo CD) into a namespace that does not exist.
namespace:
  create: false
`

// valuesFile is values.yaml: every value's default is what config/default
// installs, with a comment saying what it sets.
func valuesFile(with []object) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(valuesHeader)
	for _, w := range []struct{ key, comment string }{
		{"Deployment/staticroute-webhook", "The admission webhook: two replicas on two nodes, kept through a drain by its PodDisruptionBudget."},
		{"DaemonSet/staticroute-node-router", "The node router, on every Linux node. extraArgs are its flags, such as --flap-half-life=10s (README: Node router flags)."},
	} {
		var obj *object
		for i := range with {
			if with[i].kind()+"/"+with[i].name() == w.key {
				obj = &with[i]
			}
		}
		if obj == nil {
			return nil, fmt.Errorf("config/default has no %s", w.key)
		}
		y, err := yaml.Marshal(map[string]any{workload(w.key): defaults(*obj)})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n# %s\n%s", w.comment, y)
	}
	if bytes.Contains(b.Bytes(), []byte(Namespace)) {
		return nil, fmt.Errorf("values.yaml names the namespace %s: %s", Namespace, strings.SplitN(b.String(), Namespace, 2)[0])
	}
	return b.Bytes(), nil
}
