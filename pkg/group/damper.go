package group

import "time"

// Damper keeps a group from switching members more than once per period:
// after a switch, the group holds its new member for a period, and a
// switch that health asks for meanwhile waits until the period is over.
// A group with several members whose gateways flap would otherwise switch
// as often as any of them changes.
type Damper struct {
	last map[string]carried
}

type carried struct {
	member string
	since  time.Time // zero: the group's first member, never a switch
}

// Hold returns the member that group must keep at now, and until when;
// ok is false when the group may switch.
func (d *Damper) Hold(group string, period time.Duration, now time.Time) (member string, until time.Time, ok bool) {
	c, found := d.last[group]
	if !found || c.since.IsZero() || !now.Before(c.since.Add(period)) {
		return "", time.Time{}, false
	}
	return c.member, c.since.Add(period), true
}

// Record notes that member carries group at now: a new member starts a
// period. Groups not recorded in a round are forgotten by Forget.
func (d *Damper) Record(group, member string, now time.Time) {
	if d.last == nil {
		d.last = map[string]carried{}
	}
	c, found := d.last[group]
	switch {
	case !found:
		d.last[group] = carried{member: member}
	case c.member != member:
		d.last[group] = carried{member: member, since: now}
	}
}

// Forget drops the groups for which keep is false.
func (d *Damper) Forget(keep func(group string) bool) {
	for g := range d.last {
		if !keep(g) {
			delete(d.last, g)
		}
	}
}

// Period is how long a group holds its member after a switch: the
// shortest probe period of its checked members' probes. 0: none is
// checked, and only API changes switch it, which are never held.
func Period(probes []Probe) time.Duration {
	var period time.Duration
	for _, p := range probes {
		if period == 0 || p.Period < period {
			period = p.Period
		}
	}
	return period
}

// Holds is Hold for every group of periods (each its Period): the member
// each group held must keep, and how long until the first hold ends (0:
// none holds).
func (d *Damper) Holds(periods map[string]time.Duration, now time.Time) (map[string]string, time.Duration) {
	var hold map[string]string
	var first time.Duration
	for name, period := range periods {
		if period == 0 {
			continue
		}
		if m, until, ok := d.Hold(name, period, now); ok {
			if hold == nil {
				hold = map[string]string{}
			}
			hold[name] = m
			if left := until.Sub(now); first == 0 || left < first {
				first = left
			}
		}
	}
	return hold, first
}
