package kube

import "k8s.io/client-go/rest"

// Uncompressed is a copy of cfg whose clients do not ask for gzip. Since
// Kubernetes 1.37 the API server compresses watch-list streams (client-go
// watches that way by default), and it gzips each event on its own, for
// each watcher: every StaticRoute change was compressed once per router
// and decompressed in each, and every node state once more for the
// summarizer, on the API server's goroutine that sends that watch. For
// small events on a cluster's own network that costs CPU on both sides
// and saves little.
func Uncompressed(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.DisableCompression = true
	return c
}
