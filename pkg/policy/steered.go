package policy

import (
	"net/netip"

	"go4.org/netipx"

	"github.com/staticroute/staticroute/pkg/validate"
)

// Steered is, per group with lanes, the addresses the steering table
// sends via that group: each of its routes less the more specific routes
// inside it (another group's, a carve-out's throw), as the table's
// longest match hands them out. A new connection to one of them takes a
// lane of the group; to any other address, none.
func (d Desired) Steered() map[string]*netipx.IPSet {
	laned := map[string]bool{}
	for _, g := range d.Groups {
		if len(g.Lanes) > 0 {
			laned[g.Name] = true
		}
	}
	if len(laned) == 0 {
		return nil
	}
	// d.Routes is sorted by address, then length: a route comes before
	// the routes inside it, and a walk with a stack of the routes that
	// hold the current one finds each route's children.
	children := make([][]netip.Prefix, len(d.Routes))
	var stack []int
	for i, r := range d.Routes {
		for len(stack) > 0 && !validate.Covers(d.Routes[stack[len(stack)-1]].Prefix, r.Prefix) {
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			parent := stack[len(stack)-1]
			children[parent] = append(children[parent], r.Prefix)
		}
		stack = append(stack, i)
	}
	builders := map[string]*netipx.IPSetBuilder{}
	for i, r := range d.Routes {
		if r.Kind != Via || !laned[r.Group] {
			continue
		}
		// Each route's own part, alone: the parts are disjoint, and the
		// group's builder only ever adds.
		var own netipx.IPSetBuilder
		own.AddPrefix(r.Prefix)
		for _, c := range children[i] {
			own.RemovePrefix(c)
		}
		set, _ := own.IPSet() // Compute makes no invalid prefix
		b := builders[r.Group]
		if b == nil {
			b = &netipx.IPSetBuilder{}
			builders[r.Group] = b
		}
		b.AddSet(set)
	}
	out := make(map[string]*netipx.IPSet, len(builders))
	for g, b := range builders {
		out[g], _ = b.IPSet()
	}
	return out
}
