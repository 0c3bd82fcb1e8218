package netlab

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// World is the tutorial's world in namespaces: a switch with a VPC bridge
// and a public bridge; a node with a public and a VPC interface and strict
// rp_filter; a pod behind the node, masqueraded as a CNI does; two NAT
// gateways that masquerade only VPC sources to their own public address;
// and an "internet" that owns the echo address and answers with the
// source address it sees. An answer naming the node's own public address
// is a leak.
//
//	VPC 198.51.100.0/24: node .10, gateway A .4, gateway B .12
//	public 203.0.113.0/26: internet .1 (the node's default gateway),
//	  node .10, gateway A .20, gateway B .21
//	pod 198.18.64.2/24 behind the node (198.18.64.1); echo 192.0.2.7
type World struct {
	Switch, Node, Pod, GwA, GwB, Inet *NS
}

const (
	EchoAddr   = "192.0.2.7"
	EchoPort   = 7007
	NodePublic = "203.0.113.10"
	GwAPublic  = "203.0.113.20"
	GwBPublic  = "203.0.113.21"
)

func NewWorld(t testing.TB) *World {
	w := &World{Switch: New(t), Node: New(t), Pod: New(t), GwA: New(t), GwB: New(t), Inet: New(t)}
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
	plug(w.Node, "vpc0", "br-vpc", "198.51.100.10/24")
	plug(w.Node, "pub0", "br-pub", NodePublic+"/26")
	plug(w.GwA, "vpc", "br-vpc", "198.51.100.4/24")
	plug(w.GwA, "pub", "br-pub", GwAPublic+"/26")
	plug(w.GwB, "vpc", "br-vpc", "198.51.100.12/24")
	plug(w.GwB, "pub", "br-pub", GwBPublic+"/26")
	plug(w.Inet, "pub", "br-pub", "203.0.113.1/26")

	// The pod, masqueraded by the node like a CNI does.
	w.Node.IP(t, "link", "add", "name", "pod0", "type", "veth", "peer", "name", "eth0", "netns", w.Pod.Name)
	w.Node.IP(t, "addr", "add", "198.18.64.1/24", "dev", "pod0")
	w.Node.IP(t, "link", "set", "pod0", "up")
	w.Pod.IP(t, "addr", "add", "198.18.64.2/24", "dev", "eth0")
	w.Pod.IP(t, "link", "set", "eth0", "up")
	w.Pod.IP(t, "route", "add", "default", "via", "198.18.64.1")

	w.Node.IP(t, "route", "add", "default", "via", "203.0.113.1", "dev", "pub0")
	w.Node.Sysctl(t, "net.ipv4.ip_forward", "1")
	w.Node.Sysctl(t, "net.ipv4.conf.all.rp_filter", "1")
	w.Node.Sysctl(t, "net.ipv4.conf.default.rp_filter", "1")
	for _, l := range []string{"vpc0", "pub0", "pod0"} {
		w.Node.Sysctl(t, "net.ipv4.conf."+l+".rp_filter", "1")
	}
	w.Node.NFT(t, `table ip cni {
  chain post { type nat hook postrouting priority 100; ip saddr 198.18.64.0/24 oifname != "pod0" masquerade; }
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
	// node's strict rp_filter refuses once 192.0.2.7 is steered.
	w.Inet.IP(t, "addr", "add", EchoAddr+"/32", "dev", "lo")
	w.Inet.Sysctl(t, "net.ipv4.conf.all.arp_announce", "2")
	w.Inet.Sysctl(t, "net.ipv4.conf.pub.arp_announce", "2")
	StartEcho(t, w.Inet)
	return w
}

var portCounter atomic.Int64
