package summary

import (
	"testing"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// A failover makes one Event on the new member once every node applied
// it, one on the old member as it becomes a standby, and none while the
// nodes are switching.
func TestTransitionEvents(t *testing.T) {
	st := func(state string, selected, applied int32, failing ...string) v1.StaticRouteStatus {
		return v1.StaticRouteStatus{Group: "primary", State: state, NodesSelected: selected, NodesApplied: applied,
			NodesFailed: selected - applied, FailingNodes: failing}
	}
	for name, tc := range map[string]struct {
		old, new     v1.StaticRouteStatus
		reason, note string // empty reason: no Event
	}{
		"a new member, nodes switching": {old: v1.StaticRouteStatus{}, new: st(v1.StateActive, 10, 3)},
		"the nodes are still switching": {old: st(v1.StateActive, 10, 3), new: st(v1.StateActive, 10, 7)},
		"every node applied it":         {old: st(v1.StateActive, 10, 7), new: st(v1.StateActive, 10, 10), reason: v1.StateActive, note: "group primary: active, applied on all 10 selected nodes"},
		"nothing changed":               {old: st(v1.StateActive, 10, 10), new: st(v1.StateActive, 10, 10)},
		"a node lost it":                {old: st(v1.StateActive, 10, 10), new: st(v1.StateActive, 10, 9, "node-4"), reason: v1.StateActive, note: "group primary: active, applied on 9 of 10 selected nodes; not on node-4"},
		"a newer member took over":      {old: st(v1.StateActive, 10, 10), new: v1.StaticRouteStatus{Group: "primary", State: v1.StateStandby}, reason: v1.StateStandby, note: "group primary: standby; a newer member carries its traffic"},
		"a conflict":                    {old: st(v1.StateActive, 10, 10), new: st(v1.StateConflicted, 10, 10), reason: v1.StateConflicted, note: "group primary: conflicted, applied on 10 of 10 selected nodes"},
	} {
		t.Run(name, func(t *testing.T) {
			e := transition(tc.old, tc.new)
			switch {
			case tc.reason == "" && e != nil:
				t.Fatalf("an Event %+v, want none", e)
			case tc.reason != "" && (e == nil || e.reason != tc.reason || e.note != tc.note):
				t.Fatalf("Event %+v, want %s %q", e, tc.reason, tc.note)
			}
		})
	}
}
