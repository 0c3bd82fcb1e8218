package datapath

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
	Firewall *Firewall // where the record is read from (Read, Restore)

	recorded []int // the record as last read or planned
	loaded   bool  // the record was read from the kernel
}

// MarkPlan is what one reconcile does about src_valid_mark: the record
// to write into the firewall's table (Firewall.Apply's marked), then the
// links to turn on. The record is written first, so that a router that
// dies in between still knows the links it changed.
type MarkPlan struct {
	Record []int // every link we turned on, or are about to, that exists
	TurnOn []int // the links whose src_valid_mark is off
	// Known: the record in the table has been read. A firewall written
	// with a record not known would erase the table's, and --cleanup
	// could no longer restore those links.
	Known bool
}

// Read reads the links (and, the first time, the record in the
// firewall's table) and says what to record and turn on. On an error the
// plan keeps the last record, if it was ever read, and turns nothing on.
func (v *ValidMarks) Read() (MarkPlan, error) {
	if !v.loaded {
		rec, err := v.Firewall.recordedMarks()
		if err != nil {
			return MarkPlan{}, err
		}
		v.recorded, v.loaded = rec, true
	}
	links, err := v.Kernel.batch.linkMarks()
	if err != nil {
		return MarkPlan{Record: v.recorded, Known: true}, err
	}
	p := MarkPlan{Known: true}
	for _, l := range links {
		switch {
		case l.index == loopbackIndex:
		case !l.on:
			p.TurnOn = append(p.TurnOn, l.index)
			p.Record = append(p.Record, l.index)
		case slices.Contains(v.recorded, l.index):
			p.Record = append(p.Record, l.index)
		}
	}
	v.recorded = p.Record
	return p, nil
}

// TurnOn sets src_valid_mark=1 on the links p names, once the firewall
// holds p's record.
func (v *ValidMarks) TurnOn(p MarkPlan) error {
	if len(p.TurnOn) == 0 {
		return nil
	}
	return v.Kernel.batch.setLinkMarks(p.TurnOn, true)
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
	v.recorded = nil
	return nil
}
