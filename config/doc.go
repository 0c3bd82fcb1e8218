// Package config holds the kustomize bases (crd, rbac, webhook,
// certmanager), the overlay that installs everything (default) and the one
// tests and the demo install (test). Its tests render them and check that
// their parts fit together.
package config
