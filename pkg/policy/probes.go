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
		h := fnv.New32a()
		h.Write([]byte(p.Path.String())) // the slot follows the path: tuning keeps it
		slot := 1 + int(h.Sum32()%MaxProbes)
		for used[slot] {
			slot = 1 + slot%MaxProbes
		}
		used[slot] = true
		out = append(out, Probe{Slot: slot, Probe: p})
	}
	slices.SortFunc(out, func(a, b Probe) int { return a.Slot - b.Slot })
	return out
}
