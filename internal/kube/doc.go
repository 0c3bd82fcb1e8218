// Package kube is the node router's own small Kubernetes client: REST
// clients for the four kinds it reads or writes, informers on them, a
// server-side apply of its node state, and Events.
//
// The router runs on every node, so its memory is paid once per node.
// controller-runtime, and client-go's clientset that the Event recorders
// need, link every built-in API group: about 7 MB of binary pages and
// 3 MB of heap (the scheme's conversion tables) resident in each router,
// for kinds it never reads. Everything here is client-go's rest and
// tools/cache packages, which link none of them.
package kube
