package kube

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// LoadConfig finds the API server as kubectl does: the kubeconfig file
// given (or $KUBECONFIG, or ~/.kube/config), else the pod's service
// account when running in a cluster.
func LoadConfig(kubeconfig, userAgent string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no API server configuration (give --kubeconfig, or run in a pod with a service account): %w", err)
	}
	cfg.UserAgent = userAgent
	if cfg.QPS == 0 {
		// controller-runtime's defaults, which the router had before
		// (client-go's own are 5, burst 10).
		cfg.QPS, cfg.Burst = 20, 30
	}
	return cfg, nil
}
