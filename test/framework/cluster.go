package framework

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/staticroute/staticroute/test/netlab"
	"github.com/staticroute/staticroute/test/tb"
)

// Routers are the node routers of a world: node i is registered as the
// Node Names[i] and runs the real router inside its namespace, with its
// own credentials, reaching the API server through API[i].
type Routers struct {
	Names []string
	API   []*netlab.Forwarder
	Procs []*Process
	// how each was started, for Restart
	kubeconfigs []string
	nodes       []*netlab.NS
	flags       []string
}

// StartRouters registers every node of w (node-1, node-2, …) and starts its
// router with the given flags.
func StartRouters(t tb.T, cp *ControlPlane, w *netlab.World, flags ...string) *Routers {
	t.Helper()
	rs := &Routers{nodes: w.Nodes, flags: flags}
	for i, ns := range w.Nodes {
		name := fmt.Sprintf("node-%d", i+1)
		rs.Names = append(rs.Names, name)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := cp.Clientset(t).CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
			t.Fatalf("registering %s: %v", name, err)
		}
		kc, api := NodeAccess(t, cp, ns, name)
		rs.API = append(rs.API, api)
		rs.kubeconfigs = append(rs.kubeconfigs, kc)
		rs.Procs = append(rs.Procs, StartRouter(t, kc, ns, append([]string{"--node-name", name}, flags...)...))
	}
	return rs
}

// Restart stops router i with SIGTERM, as a rolling update or the
// kubelet does, waits for it to end, and starts it again with the same
// flags, as a new process. The new process is stopped when t ends: give
// the test that owns the cluster, not a subtest.
func (rs *Routers) Restart(t tb.T, i int) *Process {
	t.Helper()
	rs.Procs[i].Stop()
	rs.Procs[i] = StartRouter(t, rs.kubeconfigs[i], rs.nodes[i], append([]string{"--node-name", rs.Names[i]}, rs.flags...)...)
	return rs.Procs[i]
}
