//go:build tools

// Package tools pins helm, with which make test lints and renders
// charts/staticroute: built from the module proxy, never downloaded as a
// binary.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
