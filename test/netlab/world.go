package netlab

import (
	"fmt"
	"sync/atomic"

	"github.com/staticroute/staticroute/test/tb"
)

// World is the tutorial's world in namespaces: a switch with a VPC bridge
// and a public bridge; nodes with a public and a VPC interface and strict
// rp_filter; a pod behind the first node, masqueraded as a CNI does; two
// NAT gateways that masquerade only VPC sources to their own public
// address; and an "internet" that owns the echo address and answers with
// the source address it sees. An answer naming a node's own public address
// is a leak. Every role has its own address block:
//
//	VPC 198.51.100.0/24: gateway A .4, gateway B .12, node i .100+i
//	public 203.0.113.0/26: internet .1 (the nodes' default gateway),
//	  node i .10+i, gateway A .50, gateway B .51
//	pod 198.18.64.2/24 behind node 0 (198.18.64.1) on a veth lxc0; more
//	pods (AddPod) in 198.18.65.0/24, 198.18.66.0/24, …; echo 192.0.2.7
type World struct {
	Switch, Pod, GwA, GwB, Inet *NS
	Nodes                       []*NS
	Node                        *NS // Nodes[0], the one with the pod
	pods                        int // pods behind Node so far
}

// Addresses of the world that tests and the demo name.
const (
	EchoAddr   = "192.0.2.7"
	EchoPort   = 7007
	NodePublic = "203.0.113.10" // node 0's
	GwAPublic  = "203.0.113.50"
	GwBPublic  = "203.0.113.51"
	GwAVPC     = "198.51.100.4"
	GwBVPC     = "198.51.100.12"
	MaxNodes   = 40
)

// NodeVPC and NodePublicAddr are node i's addresses.
func NodeVPC(i int) string        { return fmt.Sprintf("198.51.100.%d", 100+i) }
func NodePublicAddr(i int) string { return fmt.Sprintf("203.0.113.%d", 10+i) }

// NewWorld builds the world with one node.
func NewWorld(t tb.T) *World { return NewWorldN(t, 1) }

// NewWorldN builds the world with n nodes (at most MaxNodes).
func NewWorldN(t tb.T, n int) *World {
	t.Helper()
	if n < 1 || n > MaxNodes {
		t.Fatalf("a world holds 1 to %d nodes, not %d", MaxNodes, n)
	}
	w := &World{Switch: New(t), GwA: New(t), GwB: New(t), Inet: New(t)}
	for range n {
		w.Nodes = append(w.Nodes, New(t))
	}
	w.Node = w.Nodes[0]
	w.Switch.IP(t, "link", "add", "br-vpc", "type", "bridge")
	w.Switch.IP(t, "link", "add", "br-pub", "type", "bridge")
	w.Switch.IP(t, "link", "set", "br-vpc", "up")
	w.Switch.IP(t, "link", "set", "br-pub", "up")
	plug := func(host *NS, ifname, bridge, cidr string) {
		port := fmt.Sprintf("p%d", portCounter.Add(1))
		w.Switch.IP(t, "link", "add", "name", port, "type", "veth", "peer", "name", ifname, "netns", host.Name)
		w.Switch.IP(t, "link", "set", port, "master", bridge, "up")
		host.IP(t, "addr", "add", cidr, "dev", ifname)
		host.IP(t, "link", "set", ifname, "up")
	}
	for i, node := range w.Nodes {
		plug(node, "vpc0", "br-vpc", NodeVPC(i)+"/24")
		plug(node, "pub0", "br-pub", NodePublicAddr(i)+"/26")
		node.IP(t, "route", "add", "default", "via", "203.0.113.1", "dev", "pub0")
		node.Sysctl(t, "net.ipv4.ip_forward", "1")
		for _, l := range []string{"all", "default", "vpc0", "pub0"} {
			node.Sysctl(t, "net.ipv4.conf."+l+".rp_filter", "1")
		}
	}
	plug(w.GwA, "vpc", "br-vpc", GwAVPC+"/24")
	plug(w.GwA, "pub", "br-pub", GwAPublic+"/26")
	plug(w.GwB, "vpc", "br-vpc", GwBVPC+"/24")
	plug(w.GwB, "pub", "br-pub", GwBPublic+"/26")
	plug(w.Inet, "pub", "br-pub", "203.0.113.1/26")

	// The pod, masqueraded by its node like a CNI does.
	w.Pod = w.AddPod(t, "lxc0", false)
	w.Node.NFT(t, `table ip cni {
  chain post { type nat hook postrouting priority 100; ip saddr 198.18.64.0/18 ip daddr != 198.18.64.0/18 masquerade; }
}`)

	for _, gw := range []*NS{w.GwA, w.GwB} {
		gw.Sysctl(t, "net.ipv4.ip_forward", "1")
		gw.IP(t, "route", "add", "default", "via", "203.0.113.1", "dev", "pub")
		gw.NFT(t, `table ip nat {
  chain post { type nat hook postrouting priority 100; ip saddr 198.51.100.0/24 oifname "pub" masquerade; }
}`)
	}

	// The internet owns the echo address. Real routers ARP from their own
	// address; without arp_announce=2 it would ARP as 192.0.2.7, which the
	// nodes' strict rp_filter refuses once 192.0.2.7 is steered.
	w.Inet.IP(t, "addr", "add", EchoAddr+"/32", "dev", "lo")
	w.Inet.Sysctl(t, "net.ipv4.conf.all.arp_announce", "2")
	w.Inet.Sysctl(t, "net.ipv4.conf.pub.arp_announce", "2")
	StartEcho(t, w.Inet)
	return w
}

// AddPod puts a pod behind node 0 on a link named link, as CNIs do: on
// its own veth (Cilium's lxc*, Calico's cali*, or any name), or, with
// bridged, on a veth enslaved to a bridge of that name (flannel's cni0,
// kubenet's cbr0), which then holds the node's address. Pod k (from 0)
// is 198.18.(64+k).2/24, and its node side 198.18.(64+k).1.
func (w *World) AddPod(t tb.T, link string, bridged bool) *NS {
	t.Helper()
	pod := New(t)
	k := w.pods
	w.pods++
	node, podAddr := fmt.Sprintf("198.18.%d.1", 64+k), fmt.Sprintf("198.18.%d.2", 64+k)
	port := link
	if bridged {
		port = fmt.Sprintf("brp%d", k)
		w.Node.IP(t, "link", "add", link, "type", "bridge")
		w.Node.IP(t, "link", "set", link, "up")
	}
	w.Node.IP(t, "link", "add", "name", port, "type", "veth", "peer", "name", "eth0", "netns", pod.Name)
	if bridged {
		w.Node.IP(t, "link", "set", port, "master", link)
	}
	w.Node.IP(t, "addr", "add", node+"/24", "dev", link)
	w.Node.IP(t, "link", "set", port, "up")
	w.Node.Sysctl(t, "net.ipv4.conf."+link+".rp_filter", "1")
	pod.IP(t, "addr", "add", podAddr+"/24", "dev", "eth0")
	pod.IP(t, "link", "set", "eth0", "up")
	pod.IP(t, "route", "add", "default", "via", node)
	return pod
}

var portCounter atomic.Int64
