package policy

import (
	"fmt"
	"slices"
)

// ValidMarks keeps src_valid_mark=1 on every link but loopback: strict
// rp_filter then checks an inbound packet's source with its mark, which
// the fwmark rule sends to main, so a client inside a steered prefix is
// not dropped. The kernel honours the setting if either `all` or the link
// the packet arrives on has it. In a pod /proc/sys, and so `all`, is
// read-only; so it is set per link over rtnetlink, on every link there is
// and on each new one at the next reconcile (a link event starts one).
//
// The links it turned on are recorded in the firewall's table (a set of
// ifindexes), written before the links are changed. A restarted router
// reads the record back, and --cleanup turns off exactly those links:
// never one that was on before the router came.
type ValidMarks struct {
	Kernel   *Kernel
	Firewall *Firewall

	loaded bool // the record was read from the kernel
}

// Plan returns the links to turn on, and records them, with those it
// turned on before that still exist, for the Firewall's next write. Write
// the firewall, then TurnOn.
func (v *ValidMarks) Plan() ([]int, error) {
	if !v.loaded {
		rec, err := v.Firewall.recordedMarks()
		if err != nil {
			return nil, err
		}
		v.Firewall.marked = rec
		v.loaded = true
	}
	links, err := v.Kernel.batch.linkMarks()
	if err != nil {
		return nil, err
	}
	var off, record []int
	for _, l := range links {
		switch {
		case l.index == loopbackIndex:
		case !l.on:
			off = append(off, l.index)
			record = append(record, l.index)
		case slices.Contains(v.Firewall.marked, l.index):
			record = append(record, l.index)
		}
	}
	v.Firewall.marked = record
	return off, nil
}

// TurnOn sets src_valid_mark=1 on the links Plan returned.
func (v *ValidMarks) TurnOn(indices []int) error {
	if len(indices) == 0 {
		return nil
	}
	return v.Kernel.batch.setLinkMarks(indices, true)
}

// Restore turns src_valid_mark off again on the links the record names.
// Call it before Firewall.Cleanup deletes the record.
func (v *ValidMarks) Restore() error {
	rec, err := v.Firewall.recordedMarks()
	if err != nil {
		return err
	}
	if err := v.Kernel.batch.setLinkMarks(rec, false); err != nil {
		return fmt.Errorf("restoring src_valid_mark: %w", err)
	}
	v.Firewall.marked = nil
	return nil
}
