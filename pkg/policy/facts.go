package policy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/staticroute/staticroute/pkg/validate"
)

// ReadNode reads what the desired state needs from the kernel: the VPC
// link (named, or found as the link holding an address inside one of vpc),
// the node's address on it, the prefixes on-link there, and every
// connected route of the main table.
func (k *Kernel) ReadNode(vpcLink string, vpc []netip.Prefix) (Node, error) {
	var n Node
	links, err := consistent(k.NL.LinkList)
	if err != nil {
		return n, fmt.Errorf("listing links: %w", err)
	}
	for _, l := range links {
		if vpcLink != "" && l.Attrs().Name != vpcLink {
			continue
		}
		addrs, err := consistent(func() ([]netlink.Addr, error) { return k.NL.AddrList(l, unix.AF_INET) })
		if err != nil {
			return n, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP.To4())
			if !ok {
				continue
			}
			if vpcLink != "" || containsAddr(vpc, ip) {
				n.VPCLink, n.VPCAddr = l.Attrs().Name, ip
				break
			}
		}
		if n.VPCLink != "" {
			break
		}
	}
	if n.VPCLink == "" {
		if vpcLink != "" {
			return n, fmt.Errorf("link %s has no IPv4 address", vpcLink)
		}
		return n, fmt.Errorf("no link holds an address inside the VPC %v: give --vpc-link", vpc)
	}
	vpcIndex := 0
	if l, err := k.NL.LinkByName(n.VPCLink); err == nil {
		vpcIndex = l.Attrs().Index
	}
	// Only the main table: a dump of all would parse our 20,000 routes
	// each second.
	reset := func() { n.MainVia, n.Connected, n.OnLink = nil, nil, nil }
	err = k.batch.eachRoute(unix.RT_TABLE_MAIN, reset, func(r dumpedRoute) {
		pfx := r.prefix()
		if r.gw.IsValid() && pfx.Bits() > 0 {
			n.MainVia = append(n.MainVia, pfx)
		}
		if pfx.Bits() == 0 || r.gw.IsValid() || r.scope != unix.RT_SCOPE_LINK || r.multipath {
			return
		}
		if !slices.Contains(n.Connected, pfx) {
			n.Connected = append(n.Connected, pfx)
		}
		if r.oif == vpcIndex && !slices.Contains(n.OnLink, pfx) {
			n.OnLink = append(n.OnLink, pfx)
		}
	})
	if err != nil {
		return n, fmt.Errorf("reading the main table: %w", err)
	}
	slices.SortFunc(n.Connected, validate.ComparePrefix)
	slices.SortFunc(n.OnLink, validate.ComparePrefix)
	return n, nil
}
