//go:build tools

// Package tools pins the etcd server that tests and the demo build from the
// Go module proxy (the root package of go.etcd.io/etcd/server/v3 is etcd).
package tools

import _ "go.etcd.io/etcd/server/v3"
