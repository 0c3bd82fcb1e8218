package validate

import (
	"cmp"
	"net/netip"
)

// Covers reports whether outer holds every address of inner: netip and
// go4.org/netipx answer "overlaps" and "contains an address", not this.
func Covers(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// ComparePrefix orders prefixes by address, then length: a prefix comes
// right before the ones it covers that start where it starts, which is
// the order the nesting checks walk (netipx has no compare function).
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}
