package validate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Config is what the cluster's layout says about addresses. Both binaries
// get it from LoadConfig (the layout file, flags over it); a node router
// also reads what its node really has.
type Config struct {
	// VPC CIDRs: every gateway must lie in one of them.
	VPC []netip.Prefix
	// Pod and Service CIDRs, never routed via a gateway.
	Pod     []netip.Prefix
	Service []netip.Prefix
	// APIServers are the API server's addresses, never routed via a gateway.
	APIServers []netip.Addr
}

// ParsePrefixes parses a comma-separated list of canonical IPv4 CIDRs, as
// given to a flag; flag names the flag in errors.
func ParsePrefixes(flag, list string) ([]netip.Prefix, error) {
	return parsePrefixes("--"+flag, list)
}

// parsePrefixes is ParsePrefixes naming the setting by what: a flag, or
// a field of the layout file.
func parsePrefixes(what, list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range splitList(list) {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %q is not a CIDR such as 198.51.100.0/24", what, s))
		case !p.Addr().Is4():
			errs = append(errs, fmt.Errorf("%s: %q is IPv6; only IPv4 is supported", what, s))
		case p.Masked() != p:
			errs = append(errs, fmt.Errorf("%s: %q has host bits set; did you mean %s?", what, s, p.Masked()))
		default:
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

// ParseAddrs parses a comma-separated list of IPv4 addresses.
func ParseAddrs(flag, list string) ([]netip.Addr, error) {
	return parseAddrs("--"+flag, list)
}

func parseAddrs(what, list string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, s := range splitList(list) {
		a, err := ParseIPv4(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q %w", what, s, err))
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

func splitList(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Range is one range of the cluster's own, with the words that name
// it in messages.
type Range struct {
	Prefix netip.Prefix
	What   string
}

// Ranges are the cluster's own ranges: never a destination (the webhook)
// and never steered (every node, which adds its own connected routes,
// --never-route and the special ranges). One function for both.
func (c Config) Ranges() []Range {
	var out []Range
	for _, p := range c.VPC {
		out = append(out, Range{p, "the VPC CIDR " + p.String()})
	}
	for _, p := range c.Pod {
		out = append(out, Range{p, "the pod CIDR " + p.String()})
	}
	for _, p := range c.Service {
		out = append(out, Range{p, "the service CIDR " + p.String()})
	}
	for _, a := range c.APIServers {
		// An address in a special range (the loopback a kubeconfig may
		// name) is no destination anyway: naming it again in a warning
		// says nothing.
		if slices.ContainsFunc(SpecialRanges(), func(p netip.Prefix) bool { return p.Contains(a) }) {
			continue
		}
		out = append(out, Range{netip.PrefixFrom(a, 32), "the API server address " + a.String()})
	}
	return out
}
