// Package summary turns the nodes' StaticRouteNodeStates into each
// StaticRoute's status: whether it carries its group's traffic, and on how
// many of the nodes it selects it is applied.
package summary

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
)

// Status computes the status of sr from every route and every node's
// report. It is pure: the controller compares it with what is
// stored and writes only differences.
func Status(sr *v1.StaticRoute, routes []v1.StaticRoute, states []v1.StaticRouteNodeState) v1.StaticRouteStatus {
	groupName := sr.EffectiveGroup()
	st := v1.StaticRouteStatus{Group: groupName, ObservedGeneration: sr.Generation}

	var members []*v1.StaticRoute
	for i := range routes {
		if r := &routes[i]; group.Live(r) && r.EffectiveGroup() == groupName {
			members = append(members, r)
		}
	}
	var active *v1.StaticRoute
	if i := group.Active(members, group.KeyOf); i >= 0 {
		active = members[i]
	}
	if active == nil || active.Name != sr.Name {
		st.State = v1.StateStandby
		by := ""
		if active != nil {
			by = active.Name
		}
		st.Nodes = "-"
		st.Conditions = []metav1.Condition{{
			Type: "Active", Status: metav1.ConditionFalse, Reason: "Standby",
			Message: fmt.Sprintf("the newer member %s carries group %s's traffic; delete it to fail back to this one", by, groupName),
		}}
		return st
	}

	st.State = v1.StateActive
	var failing []string
	conflicted := ""
	for _, ns := range states {
		i := slices.IndexFunc(ns.Status.Groups, func(g v1.NodeGroupState) bool { return g.Group == groupName })
		if i < 0 {
			continue
		}
		g := ns.Status.Groups[i]
		if g.ActiveMember != sr.Name {
			// The node has not caught up with this member yet.
			st.NodesSelected++
			st.NodesFailed++
			failing = append(failing, ns.Name)
			continue
		}
		st.NodesSelected++
		switch g.State {
		case v1.NodeGroupApplied:
			st.NodesApplied++
		case v1.NodeGroupConflicted:
			st.NodesApplied++ // what it may route is routed
			conflicted = g.Message
		default:
			st.NodesFailed++
			failing = append(failing, ns.Name)
		}
	}
	if conflicted != "" {
		st.State = v1.StateConflicted
	}
	slices.Sort(failing)
	st.FailingNodes = failing[:min(len(failing), v1.MaxFailingNodeNames)]
	st.Nodes = fmt.Sprintf("%d/%d", st.NodesApplied, st.NodesSelected)

	active1 := metav1.Condition{Type: "Active", Status: metav1.ConditionTrue, Reason: "NewestMember", Message: "this is the newest member of group " + groupName}
	if conflicted != "" {
		active1.Reason, active1.Message = "Conflicted", conflicted
	}
	applied := metav1.Condition{Type: "Applied", Status: metav1.ConditionTrue, Reason: "AllNodes", Message: fmt.Sprintf("applied on all %d selected nodes", st.NodesSelected)}
	switch {
	case st.NodesSelected == 0:
		applied = metav1.Condition{Type: "Applied", Status: metav1.ConditionFalse, Reason: "NoNodes", Message: "no node reports this route: none is selected, or no router runs"}
	case st.NodesFailed > 0:
		applied = metav1.Condition{Type: "Applied", Status: metav1.ConditionFalse, Reason: "NodesFailing",
			Message: fmt.Sprintf("%d of %d selected nodes have not applied it: %s", st.NodesFailed, st.NodesSelected, strings.Join(st.FailingNodes, ", "))}
	}
	st.Conditions = []metav1.Condition{active1, applied}
	return st
}
