//go:build tools

// Package tools pins the Kubernetes binaries that tests and the demo build
// from the Go module proxy: kube-apiserver, kube-controller-manager (garbage
// collection of node states) and kubectl of the same minor version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
