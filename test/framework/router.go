package framework

import (
	"net"

	"github.com/staticroute/staticroute/test/tb"

	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/staticroute/staticroute/test/netlab"
)

// RouterServiceAccount is the identity config/rbac grants node routers.
const RouterServiceAccount = "system:serviceaccount:staticroute-system:staticroute-node-router"

// NodeAccess lets processes inside a node's namespace reach the API server
// (through a forwarder whose socket lives there) and returns a kubeconfig
// with the router's own credentials for that node: a ServiceAccount token
// bound to a Pod whose spec.nodeName is the node, as the kubelet would get
// for the DaemonSet's Pod. That token carries the node's name, which the
// node-state admission policy checks. Call it once per node.
func NodeAccess(t tb.T, cp *ControlPlane, node *netlab.NS, nodeName string) (kubeconfig string, apiServer *netlab.Forwarder) {
	t.Helper()
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	// Same address and port inside the node: the kubeconfig and the API
	// server's certificate hold as they are.
	apiServer = netlab.Forward(t, node, u.Host, u.Host)
	return RouterKubeconfig(t, cp, cp.Config.Host, nodeName), apiServer
}

// RemoteAPIServer makes the API server reachable at addr (an address on
// the namespace's loopback) from wherever routes lead to that namespace,
// and returns the server URL for RouterKubeconfig.
func RemoteAPIServer(t tb.T, cp *ControlPlane, at *netlab.NS, addr string) (server string, apiServer *netlab.Forwarder) {
	t.Helper()
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	at.IP(t, "addr", "add", addr+"/32", "dev", "lo")
	listen := net.JoinHostPort(addr, u.Port())
	return "https://" + listen, netlab.Forward(t, at, listen, u.Host)
}

// RouterKubeconfig writes a kubeconfig for the router of a node that talks
// to server, readable by the unprivileged router.
func RouterKubeconfig(t tb.T, cp *ControlPlane, server, nodeName string) string {
	t.Helper()
	return RouterKubeconfigIn(t, cp, "staticroute-system", server, nodeName)
}

// RouterKubeconfigIn is RouterKubeconfig for staticroute installed in
// namespace.
func RouterKubeconfigIn(t tb.T, cp *ControlPlane, namespace, server, nodeName string) string {
	t.Helper()
	return TokenKubeconfig(t, cp, server, RouterTokenIn(t, cp, namespace, nodeName))
}

// TokenKubeconfig writes a kubeconfig that authenticates with token alone
// to server, readable by an unprivileged process.
func TokenKubeconfig(t tb.T, cp *ControlPlane, server, token string) string {
	t.Helper()
	// The API server's certificate names 127.0.0.1, wherever it is reached.
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority-data: %s, tls-server-name: 127.0.0.1}
users:
- name: node-router
  user: {token: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: node-router}
current-context: e2e
`, server, base64.StdEncoding.EncodeToString(cp.Config.CAData), token)
	dir, err := os.MkdirTemp("", "router-kubeconfig-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// RouterToken makes the router Pod of a node (an object only: no kubelet
// runs it) and a token bound to it, through the TokenRequest API.
func RouterToken(t tb.T, cp *ControlPlane, nodeName string) string {
	t.Helper()
	return RouterTokenIn(t, cp, "staticroute-system", nodeName)
}

// RouterTokenIn is RouterToken for staticroute installed in namespace.
func RouterTokenIn(t tb.T, cp *ControlPlane, namespace, nodeName string) string {
	t.Helper()
	cs := cp.Clientset(t)
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "staticroute-node-router-" + nodeName, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName: nodeName, ServiceAccountName: "staticroute-node-router",
			Containers: []corev1.Container{{Name: "node-router", Image: "node-router"}},
		},
	}
	if _, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("the router pod of %s: %v", nodeName, err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, "staticroute-node-router", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](2 * 3600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", nodeName, err)
	}
	return tr.Status.Token
}

// RouterCommand is the command line that runs the node-router binary inside
// a node's namespace as nobody with only CAP_NET_ADMIN and CAP_NET_RAW (the
// DaemonSet's), for `ip`.
//
// ROUTER_ENV (e.g. ROUTER_ENV=GOMAXPROCS=1) sets environment variables of
// every router, for experiments.
func RouterCommand(t tb.T, node *netlab.NS, args ...string) []string {
	cmd := []string{"netns", "exec", node.Name,
		"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw", "--bounding-set=-all,+net_admin,+net_raw"}
	if env := strings.Fields(os.Getenv("ROUTER_ENV")); len(env) > 0 {
		cmd = append(append(cmd, "env"), env...)
	}
	return append(append(cmd, Bin(t, "node-router")), args...)
}

// StartRouter runs the real node-router inside a node's namespace with the
// kubeconfig from NodeAccess.
func StartRouter(t tb.T, kubeconfig string, node *netlab.NS, args ...string) *Process {
	t.Helper()
	args = append([]string{"--kubeconfig", kubeconfig, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, args...)
	return Start(t, "ip", RouterCommand(t, node, args...)...)
}
