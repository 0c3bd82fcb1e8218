package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

// apiVIP is where the nodes reach the API server: an address of the
// "internet" that only their default route (via the public side) leads to.
const apiVIP = "198.18.200.1"

// TestControlPlaneOnlyViaTheDefaultRoute routes everything (0.0.0.0/0) via
// gateway A while the API server is reachable only through the nodes'
// default route, kills gateway A and fails over with kubectl: the routers
// hear of it because the control plane is carved out of the steering.
func TestControlPlaneOnlyViaTheDefaultRoute(t *testing.T) {
	framework.RequireRoot(t)
	cp := framework.StartControlPlane(t)
	certDir, ca := framework.NewWebhookCerts(t)
	cp.Install(t, ca)
	framework.StartWebhook(t, cp, certDir, worldFlags...)
	w := netlab.NewWorldN(t, 3)
	server, _ := framework.RemoteAPIServer(t, cp, w.Inet, apiVIP)
	c := &cluster{cp: cp, w: w}
	for i, ns := range w.Nodes {
		name := fmt.Sprintf("node-%d", i+1)
		c.names = append(c.names, name)
		cp.MustKubectl(t, []byte("apiVersion: v1\nkind: Node\nmetadata: {name: "+name+"}\n"), "create", "-f", "-")
		kc := framework.RouterKubeconfig(t, cp, server, name)
		c.routers = append(c.routers, framework.StartRouter(t, kc, ns, append([]string{"--node-name", name}, worldFlags...)...))
	}

	cp.MustKubectl(t, routeYAML("everything", "", netlab.GwAVPC, "0.0.0.0/0"), "apply", "-f", "-")
	c.expect(t, all(netlab.GwAPublic))
	for i, ns := range w.Nodes {
		if got := ns.IP(t, "route", "get", apiVIP); !strings.Contains(got, "dev pub0") {
			t.Fatalf("%s reaches the API server %q, want by its default route on pub0", c.names[i], got)
		}
	}

	// Gateway A dies.
	w.GwA.IP(t, "link", "set", "vpc", "down")
	c.expect(t, all("no answer"))

	cp.MustKubectl(t, routeYAML("everything-b", "everything", netlab.GwBVPC, "0.0.0.0/0"), "apply", "-f", "-")
	c.expect(t, all(netlab.GwBPublic))
}
