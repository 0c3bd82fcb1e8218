package group

import "time"

// Draining is the index of the member of ms whose connections drain
// after the member at active took the group over (a planned failover
// with spec.drainSeconds), and until when; -1 if none. It is the member
// that would carry the group without the active one, if that member is
// older, its gateways are up as this node sees them (a gateway that died
// is never drained to), and the active member's drain, counted from its
// creation, has not passed at now. Counting from the creation makes the
// end the same on every node and after a restart.
func Draining[T any](ms []T, active int, key func(T) Key, rank func(T) int, up func(T) bool, drain func(T) time.Duration, now time.Time) (int, time.Time) {
	d := drain(ms[active])
	if d <= 0 {
		return -1, time.Time{}
	}
	until := key(ms[active]).Created.Add(d)
	if !now.Before(until) {
		return -1, time.Time{}
	}
	others := make([]T, 0, len(ms)-1)
	idx := make([]int, 0, len(ms)-1)
	for i, m := range ms {
		if i != active {
			others, idx = append(others, m), append(idx, i)
		}
	}
	next := Active(others, key, rank)
	if next < 0 || !up(others[next]) || !Newer(key(ms[active]), key(others[next])) {
		return -1, time.Time{}
	}
	return idx[next], until
}
