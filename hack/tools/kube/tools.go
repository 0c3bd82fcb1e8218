//go:build tools

// Package tools pins the Kubernetes binaries that tests and the demo build
// from the Go module proxy: kube-apiserver, kube-controller-manager (garbage
// collection of node states) and kubectl of the same minor version; and for
// the tests' real nodes, kubelet, kube-proxy and kube-scheduler.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
