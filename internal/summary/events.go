package summary

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// EventRecorder records an events.k8s.io Event (controller-runtime's
// manager.GetEventRecorder gives one).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// event is one Event to record on a StaticRoute.
type event struct {
	kind, reason, note string
}

// transition is the Event for a route whose status went from old to new,
// if it is a transition worth one: it became a standby, it became
// conflicted, it came to be active and applied on every selected node, or
// it stopped being applied everywhere while active. A new member that is
// active while the nodes are still switching gets no Event of its own:
// the one for "applied on all" follows within a second or two, and a node
// that fails says so in its own Warning. One Event per route per
// transition, with the counts, stands for what every node would
// otherwise say.
func transition(old, new v1.StaticRouteStatus) *event {
	complete := func(s v1.StaticRouteStatus) bool {
		return s.State == v1.StateActive && s.NodesSelected > 0 && s.NodesFailed == 0
	}
	switch {
	case new.State == v1.StateActive && old.NodesOnFallback == 0 && new.NodesOnFallback > 0:
		return &event{kind: corev1.EventTypeWarning, reason: "AutomaticFailover", note: fmt.Sprintf(
			"group %s: %d of %d nodes see this member's gateway down and carry the group on an older member", new.Group, new.NodesOnFallback, new.NodesSelected)}
	case new.State == v1.StateActive && old.NodesOnFallback > 0 && new.NodesOnFallback == 0 && old.State == v1.StateActive:
		return &event{kind: corev1.EventTypeNormal, reason: "AutomaticFailback", note: fmt.Sprintf(
			"group %s: every node sees this member's gateway up again and carries the group on it", new.Group)}
	case old.State == new.State && complete(old) == complete(new):
		return nil
	case new.State == v1.StateActive && !complete(new) && !complete(old):
		return nil // switching: wait for the outcome
	}
	e := &event{kind: corev1.EventTypeNormal, reason: string(new.State)}
	switch {
	case new.State == v1.StateStandby:
		e.note = fmt.Sprintf("group %s: standby; a newer member carries its traffic", new.Group)
	case complete(new):
		e.note = fmt.Sprintf("group %s: active, applied on all %d selected nodes", new.Group, new.NodesSelected)
	default:
		e.kind = corev1.EventTypeWarning
		e.note = fmt.Sprintf("group %s: %s, applied on %d of %d selected nodes", new.Group, strings.ToLower(string(new.State)), new.NodesApplied, new.NodesSelected)
		if len(new.FailingNodes) > 0 {
			e.note += "; not on " + strings.Join(new.FailingNodes, ", ")
		}
	}
	return e
}
