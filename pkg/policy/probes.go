package policy

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/staticroute/staticroute/pkg/group"
)

// MaxProbes is how many distinct probes a node runs at most: each takes
// one of the 63 values of the probe mark's low bits (Options.ProbeMark).
const MaxProbes = 63

// probeSlots gives each distinct probe a slot in 1..MaxProbes, stable
// while the set changes: a slot comes from a hash of the probe, a
// collision takes the next free slot in the probes' order. A probe whose
// slot changed would leave, for the instant between the kernel's change
// and its prober's, through another probe's table: stable slots keep that
// to collisions. Probes past MaxProbes are not run: their members stay
// Pending (carrying only what they carry already); the webhook refuses
// what would need more.
func probeSlots(ps []group.Probe) []Probe {
	// One probe per path: the most frequent (then the first in order).
	slices.SortFunc(ps, func(a, b group.Probe) int {
		if c := strings.Compare(a.Path.String(), b.Path.String()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Period, b.Period); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	ps = slices.CompactFunc(ps, func(a, b group.Probe) bool { return a.Path == b.Path })
	used := map[int]bool{}
	out := make([]Probe, 0, len(ps))
	for _, p := range ps {
		if len(out) == MaxProbes {
			break
		}
		// The slot follows the path: tuning keeps it.
		out = append(out, Probe{Slot: freeSlot(used, p.Path.String(), MaxProbes), Probe: p})
	}
	slices.SortFunc(out, func(a, b Probe) int { return a.Slot - b.Slot })
	return out
}

// freeSlot takes a slot in 1..n for name from a hash of it, or on a
// collision the next free one, and marks it used.
func freeSlot(used map[int]bool, name string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	slot := 1 + int(h.Sum32()%uint32(n))
	for used[slot] {
		slot = 1 + slot%n
	}
	used[slot] = true
	return slot
}
