package netlab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/vishvananda/netlink"

	"github.com/staticroute/staticroute/test/tb"
)

// World is the tutorial's world in namespaces: a switch with a VPC bridge
// and a public bridge; nodes with a public and a VPC interface and strict
// rp_filter; a pod behind the first node, masqueraded as a CNI does; two
// NAT gateways that masquerade only VPC sources to their own public
// address; and an "internet" that owns the echo address and answers with
// the source address it sees. An answer naming a node's own public address
// is a leak. Every role has its own address block (Plan): the tutorial's
// up to 40 nodes, a larger plan beyond.
//
// The pod is 198.18.64.2/24 behind node 0 (198.18.64.1) on a veth lxc0;
// more pods (AddPod) are in 198.18.65.0/24, 198.18.66.0/24, …; the echo is
// 192.0.2.7.
type World struct {
	Plan
	Switch, Pod, GwA, GwB, Inet *NS
	Nodes                       []*NS
	Node                        *NS // Nodes[0], the one with the pod
	pods                        int // pods behind Node so far
}

// Addresses of the tutorial's plan (worlds of up to MaxNodes nodes) that
// tests and the demo name.
const (
	EchoAddr   = "192.0.2.7"
	EchoPort   = 7007
	NodePublic = "203.0.113.10" // node 0's
	GwAPublic  = "203.0.113.50"
	GwBPublic  = "203.0.113.51"
	GwAVPC     = "198.51.100.4"
	GwBVPC     = "198.51.100.12"
	MaxNodes   = 40
	// MaxLargeNodes is the most nodes a world holds (the large plan).
	MaxLargeNodes = 3000
)

// Plan is where a world's hosts sit: a VPC subnet with the two gateways
// and the nodes, and a public subnet with the internet's router (every
// host's default gateway), the gateways' public sides and the nodes'.
type Plan struct {
	VPC, Public          netip.Prefix
	GwAVPC, GwBVPC       string
	GwAPublic, GwBPublic string
	Internet             string // the internet's address on the public subnet
	// Large: the world is built for hundreds of nodes (see NewWorldN).
	Large                 bool
	firstVPC, firstPublic netip.Addr // node 0's
}

// PlanFor is the address plan of a world of n nodes. Up to MaxNodes it is
// the tutorial's:
//
//	VPC 198.51.100.0/24: gateway A .4, gateway B .12, node i .100+i
//	public 203.0.113.0/26: internet .1, node i .10+i, gateway A .50, B .51
//
// Beyond, a /24 is too small; still inside the test ranges:
//
//	VPC 198.18.0.0/20: gateway A .0.4, gateway B .0.12, node i 198.18.1.0+i
//	public 198.19.0.0/16: internet .0.1, gateway A .0.50, B .0.51,
//	  node i 198.19.1.0+i
func PlanFor(n int) Plan {
	if n <= MaxNodes {
		return Plan{
			VPC: netip.MustParsePrefix("198.51.100.0/24"), Public: netip.MustParsePrefix("203.0.113.0/26"),
			GwAVPC: GwAVPC, GwBVPC: GwBVPC, GwAPublic: GwAPublic, GwBPublic: GwBPublic, Internet: "203.0.113.1",
			firstVPC: netip.MustParseAddr("198.51.100.100"), firstPublic: netip.MustParseAddr(NodePublic),
		}
	}
	return Plan{
		VPC: netip.MustParsePrefix("198.18.0.0/20"), Public: netip.MustParsePrefix("198.19.0.0/16"),
		GwAVPC: "198.18.0.4", GwBVPC: "198.18.0.12", GwAPublic: "198.19.0.50", GwBPublic: "198.19.0.51", Internet: "198.19.0.1",
		Large: true, firstVPC: netip.MustParseAddr("198.18.1.0"), firstPublic: netip.MustParseAddr("198.19.1.0"),
	}
}

// NodeVPC and NodePublic are node i's addresses.
func (p Plan) NodeVPC(i int) string    { return nth(p.firstVPC, i).String() }
func (p Plan) NodePublic(i int) string { return nth(p.firstPublic, i).String() }

func nth(a netip.Addr, i int) netip.Addr {
	b := a.As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(i))
	return netip.AddrFrom4(b)
}

// LayoutYAML is the same layout as the ConfigMap staticroute-layout's
// layout.yaml holds it: what a user writes there for this world.
func (p Plan) LayoutYAML() []byte {
	return []byte("vpcCIDRs: [" + p.VPC.String() + "]\npodCIDRs: [198.18.64.0/18]\nserviceCIDRs: [198.18.128.0/18]\n")
}

// ClusterFlags is the cluster's layout for the webhook and the router:
// the VPC, and the pod and service ranges (the same in every plan).
func (p Plan) ClusterFlags() []string {
	return []string{"--vpc-cidr=" + p.VPC.String(), "--pod-cidr=198.18.64.0/18", "--service-cidr=198.18.128.0/18"}
}

// NewWorld builds the world with one node.
func NewWorld(t tb.T) *World { return NewWorldN(t, 1) }

// NewWorldN builds the world with n nodes (at most MaxLargeNodes). A large
// world (over MaxNodes nodes) takes what hundreds of hosts on two bridges
// need to lose nothing of their own: no IPv6 on any link (no duplicate
// address detection, router or multicast listener chatter on 800 bridge
// ports), and permanent neighbour entries between the nodes, the gateways
// and the internet, since the kernel's neighbour table is shared by every
// namespace and would overflow (gc_thresh3, a sysctl of the root
// namespace's that we leave alone) with thousands of learned entries.
func NewWorldN(t tb.T, n int) *World {
	t.Helper()
	if n < 1 || n > MaxLargeNodes {
		t.Fatalf("a world holds 1 to %d nodes, not %d", MaxLargeNodes, n)
	}
	w := &World{Plan: PlanFor(n)}
	host := func() *NS {
		ns := New(t)
		if w.Large {
			ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1", "net.ipv6.conf.default.disable_ipv6", "1")
		}
		return ns
	}
	w.Switch, w.GwA, w.GwB, w.Inet = host(), host(), host(), host()
	for range n {
		w.Nodes = append(w.Nodes, host())
	}
	w.Node = w.Nodes[0]
	w.Switch.IP(t, "link", "add", "br-vpc", "type", "bridge")
	w.Switch.IP(t, "link", "add", "br-pub", "type", "bridge")
	w.Switch.IP(t, "link", "set", "br-vpc", "up")
	w.Switch.IP(t, "link", "set", "br-pub", "up")
	var vpcSide, pubSide []neighbour // every host's side of each subnet
	plug := func(host *NS, ifname, bridge, addr string, pfx netip.Prefix) {
		port := fmt.Sprintf("p%d", portCounter.Add(1))
		cidr := fmt.Sprintf("%s/%d", addr, pfx.Bits())
		w.Switch.IP(t, "link", "add", "name", port, "type", "veth", "peer", "name", ifname, "netns", host.Name)
		w.Switch.IP(t, "link", "set", port, "master", bridge, "up")
		host.IP(t, "addr", "add", cidr, "dev", ifname)
		host.IP(t, "link", "set", ifname, "up")
		if !w.Large {
			return
		}
		l, err := host.NL.LinkByName(ifname)
		host.Must(t, err)
		nb := neighbour{host: host, index: l.Attrs().Index, mac: l.Attrs().HardwareAddr, addr: netip.MustParseAddr(addr)}
		if pfx == w.VPC {
			vpcSide = append(vpcSide, nb)
		} else {
			pubSide = append(pubSide, nb)
		}
	}
	for i, node := range w.Nodes {
		plug(node, "vpc0", "br-vpc", w.NodeVPC(i), w.VPC)
		plug(node, "pub0", "br-pub", w.NodePublic(i), w.Public)
		node.IP(t, "route", "add", "default", "via", w.Internet, "dev", "pub0")
		kv := []string{"net.ipv4.ip_forward", "1"}
		for _, l := range []string{"all", "default", "vpc0", "pub0"} {
			kv = append(kv, "net.ipv4.conf."+l+".rp_filter", "1")
		}
		node.Sysctl(t, kv...)
	}
	plug(w.GwA, "vpc", "br-vpc", w.GwAVPC, w.VPC)
	plug(w.GwA, "pub", "br-pub", w.GwAPublic, w.Public)
	plug(w.GwB, "vpc", "br-vpc", w.GwBVPC, w.VPC)
	plug(w.GwB, "pub", "br-pub", w.GwBPublic, w.Public)
	plug(w.Inet, "pub", "br-pub", w.Internet, w.Public)
	if w.Large {
		// Nodes know the gateways and the internet; the gateways and the
		// internet know everyone on their subnets. Nodes never talk to
		// each other here.
		routers := map[netip.Addr]bool{}
		for _, a := range []string{w.GwAVPC, w.GwBVPC, w.GwAPublic, w.GwBPublic, w.Internet} {
			routers[netip.MustParseAddr(a)] = true
		}
		for _, side := range [][]neighbour{vpcSide, pubSide} {
			for _, from := range side {
				for _, to := range side {
					if from.host != to.host && (routers[from.addr] || routers[to.addr]) {
						from.know(t, to)
					}
				}
			}
		}
	}

	// The pod, masqueraded by its node like a CNI does.
	w.Pod = w.AddPod(t, "lxc0", false)
	w.Node.NFT(t, `table ip cni {
  chain post { type nat hook postrouting priority 100; ip saddr 198.18.64.0/18 ip daddr != 198.18.64.0/18 masquerade; }
}`)

	for _, gw := range []*NS{w.GwA, w.GwB} {
		natGateway(t, gw, w.Internet, w.VPC)
	}

	// The internet owns the echo address. Real routers ARP from their own
	// address; without arp_announce=2 it would ARP as 192.0.2.7, which the
	// nodes' strict rp_filter refuses once 192.0.2.7 is steered.
	w.Inet.IP(t, "addr", "add", EchoAddr+"/32", "dev", "lo")
	w.Inet.Sysctl(t, "net.ipv4.conf.all.arp_announce", "2", "net.ipv4.conf.pub.arp_announce", "2")
	StartEcho(t, w.Inet)
	return w
}

// neighbour is one host's interface on a subnet, read once when plugged.
type neighbour struct {
	host  *NS
	index int // the interface's, in host
	mac   net.HardwareAddr
	addr  netip.Addr
}

// know makes a permanent neighbour entry for to on from's link.
func (from neighbour) know(t tb.T, to neighbour) {
	t.Helper()
	from.host.Must(t, from.host.NL.NeighSet(&netlink.Neigh{
		LinkIndex: from.index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: to.addr.AsSlice(), HardwareAddr: to.mac,
	}))
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

// AddVPCHost plugs a new host into the VPC at addr (a small world's), on
// a link named vpc0: a control plane beside the nodes.
func (w *World) AddVPCHost(t tb.T, addr string) *NS {
	t.Helper()
	h := New(t)
	port := fmt.Sprintf("p%d", portCounter.Add(1))
	w.Switch.IP(t, "link", "add", "name", port, "type", "veth", "peer", "name", "vpc0", "netns", h.Name)
	w.Switch.IP(t, "link", "set", port, "master", "br-vpc", "up")
	h.IP(t, "addr", "add", fmt.Sprintf("%s/%d", addr, w.VPC.Bits()), "dev", "vpc0")
	h.IP(t, "link", "set", "vpc0", "up")
	return h
}
