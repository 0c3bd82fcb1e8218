package framework

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/staticroute/staticroute/test/netlab"
)

// RouterServiceAccount is the identity config/rbac grants node routers.
const RouterServiceAccount = "system:serviceaccount:staticroute-system:staticroute-node-router"

// NodeAccess lets processes inside a node's namespace reach the API server
// (through a forwarder whose socket lives there) and returns a kubeconfig
// for the routers' identity that an unprivileged process can read. Call it
// once per node.
func NodeAccess(t testing.TB, cp *ControlPlane, node *netlab.NS) string {
	t.Helper()
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	// Same address and port inside the node: the kubeconfig and the API
	// server's certificate hold as they are.
	netlab.Forward(t, node, u.Host, u.Host)
	kc, err := os.ReadFile(cp.UserKubeconfig(t, RouterServiceAccount))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "router-kubeconfig-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kc, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// RouterCommand is the command line that runs the node-router binary inside
// a node's namespace as nobody with only CAP_NET_ADMIN, for `ip`.
func RouterCommand(t testing.TB, node *netlab.NS, args ...string) []string {
	return append([]string{"netns", "exec", node.Name,
		"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin",
		Bin(t, "node-router")}, args...)
}

// StartRouter runs the real node-router inside a node's namespace with the
// kubeconfig from NodeAccess.
func StartRouter(t testing.TB, kubeconfig string, node *netlab.NS, args ...string) *Process {
	t.Helper()
	args = append([]string{"--kubeconfig", kubeconfig, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, args...)
	return Start(t, "ip", RouterCommand(t, node, args...)...)
}
