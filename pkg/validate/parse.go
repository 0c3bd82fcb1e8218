// Package validate holds the rules a StaticRoute must meet. It is pure (no
// I/O) so that the admission webhook and every node router run the same
// code: what is admitted is what a node can apply, and a router never has to
// trust that admission ran.
package validate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ParseDestination parses a destination: an IPv4 address (a /32) or a
// canonical IPv4 CIDR. Its errors say what to write instead.
func ParseDestination(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("must not be empty: write an IPv4 address (203.0.113.7) or CIDR (203.0.113.0/24)")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("must be an IPv4 address (203.0.113.7) or CIDR (203.0.113.0/24)")
		}
		if !p.Addr().Is4() {
			return netip.Prefix{}, errors.New("must be IPv4: IPv6 destinations are not supported")
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("must be a canonical CIDR (no host bits set): did you mean %s?", m)
		}
		return p, nil
	}
	a, err := ParseIPv4(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.IsUnspecified() {
		return netip.Prefix{}, errors.New("0.0.0.0 is not a destination: did you mean 0.0.0.0/0?")
	}
	return netip.PrefixFrom(a, 32), nil
}

// ParseIPv4 parses a plain IPv4 address (no zone, no IPv4-in-IPv6 form).
func ParseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errors.New("must be an IPv4 address (203.0.113.7) or CIDR (203.0.113.0/24)")
	}
	if !a.Is4() {
		return netip.Addr{}, errors.New("must be IPv4: IPv6 is not supported")
	}
	return a, nil
}

// special lists the ranges that never leave a node via a gateway. It is
// constant data, read only.
var special = [...]struct {
	prefix netip.Prefix
	name   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network 0.0.0.0/8"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback 127.0.0.0/8"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local 169.254.0.0/16 (incl. the metadata service 169.254.169.254)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast 224.0.0.0/4"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast 255.255.255.255"},
}

// SpecialRanges returns the special ranges: nodes carve them out of every
// routed prefix.
func SpecialRanges() []netip.Prefix {
	out := make([]netip.Prefix, len(special))
	for i, s := range special {
		out[i] = s.prefix
	}
	return out
}

// insideSpecial names the special range p lies in, if any.
func insideSpecial(p netip.Prefix) (string, bool) {
	for _, s := range special {
		if Covers(s.prefix, p) {
			return s.name, true
		}
	}
	return "", false
}

// containedSpecial lists the special ranges that p strictly contains.
func containedSpecial(p netip.Prefix) []string {
	var out []string
	for _, s := range special {
		if p.Bits() < s.prefix.Bits() && Covers(p, s.prefix) {
			out = append(out, s.name)
		}
	}
	return out
}
