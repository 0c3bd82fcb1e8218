package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// VPCHint is how ReadNode finds the VPC link, the first that is given:
// by name (--vpc-link), as the link holding an address inside one of
// CIDRs (the layout's vpcCIDRs), or as the link holding NodeIP (the
// node's InternalIP, from the downward API): the layout sets no VPC then,
// and the VPC is that address's prefix.
type VPCHint struct {
	Link   string
	CIDRs  []netip.Prefix
	NodeIP netip.Addr
}

// holds says whether ip, an address of the link named link, marks it as
// the VPC link.
func (h VPCHint) holds(link string, ip netip.Addr) bool {
	switch {
	case h.Link != "":
		return link == h.Link
	case len(h.CIDRs) > 0:
		return slices.ContainsFunc(h.CIDRs, func(p netip.Prefix) bool { return p.Contains(ip) })
	}
	return h.NodeIP.IsValid() && ip == h.NodeIP
}

// notFound says why no link matched h, and what to give.
func (h VPCHint) notFound() error {
	switch {
	case h.Link != "":
		return fmt.Errorf("link %s has no IPv4 address", h.Link)
	case len(h.CIDRs) > 0:
		return fmt.Errorf("no link holds an address inside the VPC %v: give --vpc-link", h.CIDRs)
	case h.NodeIP.IsValid():
		return fmt.Errorf("no link holds the node's address %s: set vpcCIDRs in the ConfigMap %s, or give --vpc-link", h.NodeIP, validate.LayoutConfigMap)
	}
	return fmt.Errorf("the VPC link cannot be found: the layout sets no vpcCIDRs and the node's address is not known; give $NODE_IP (the downward API's status.hostIP) or --node-ip, or set vpcCIDRs in the ConfigMap %s", validate.LayoutConfigMap)
}

// ReadNode reads what the desired state needs from the kernel: the VPC
// link (found as h says), the node's address on it and that address's
// prefix, the prefixes on-link there, and every connected route of the
// main table.
func (k *Kernel) ReadNode(h VPCHint) (policy.Node, error) {
	var n policy.Node
	links, err := consistent(k.NL.LinkList)
	if err != nil {
		return n, fmt.Errorf("listing links: %w", err)
	}
	for _, l := range links {
		if h.Link != "" && l.Attrs().Name != h.Link {
			continue
		}
		addrs, err := consistent(func() ([]netlink.Addr, error) { return k.NL.AddrList(l, unix.AF_INET) })
		if err != nil {
			return n, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP.To4())
			if !ok || !h.holds(l.Attrs().Name, ip) {
				continue
			}
			ones, _ := a.Mask.Size()
			n.VPCLink, n.VPCAddr, n.VPCPrefix = l.Attrs().Name, ip, netip.PrefixFrom(ip, ones).Masked()
			break
		}
		if n.VPCLink != "" {
			break
		}
	}
	if n.VPCLink == "" {
		return n, h.notFound()
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

// consistent calls list, a vishvananda/netlink dump, again while the
// kernel marks its answer interrupted (netlink.ErrDumpInterrupted comes
// with results that may miss or double entries), up to maxDumpTries
// times.
func consistent[T any](list func() (T, error)) (T, error) {
	for try := 1; ; try++ {
		out, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
		if try == maxDumpTries {
			var zero T
			return zero, fmt.Errorf("%w (%d tries): %w", errDumpInterrupted, try, err)
		}
	}
}
