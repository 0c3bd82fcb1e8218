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
	members := group.Members(routes, groupName)
	var active *v1.StaticRoute
	if i := group.Active(members, group.KeyOf, nil); i >= 0 {
		active = members[i]
	}
	var st v1.StaticRouteStatus
	if active == nil || active.Name != sr.Name {
		st = notNewest(sr.Name, groupName, active, states)
	} else {
		st = newest(sr.Name, groupName, states)
	}
	st.Group, st.ObservedGeneration = groupName, sr.Generation
	if reachable := gatewayReachable(sr.Name, groupName, states); reachable != nil {
		st.Conditions = append(st.Conditions, *reachable)
	}
	return st
}

// notNewest is the status of a member that is not its group's newest
// (active): a fallback where nodes carry the group on it, else a
// standby.
func notNewest(name, groupName string, active *v1.StaticRoute, states []v1.StaticRouteNodeState) v1.StaticRouteStatus {
	var st v1.StaticRouteStatus
	by := ""
	if active != nil {
		by = active.Name
	}
	carrying, selected := int32(0), int32(0)
	for _, ns := range states {
		if g, ok := groupState(ns, groupName); ok {
			selected++
			if g.ActiveMember == name {
				carrying++
			}
		}
	}
	if carrying > 0 {
		st.State, st.NodesSelected, st.NodesApplied = v1.StateFallback, selected, carrying
		st.Nodes = fmt.Sprintf("%d/%d", carrying, selected)
		st.Conditions = []metav1.Condition{{
			Type: v1.ConditionActive, Status: metav1.ConditionTrue, Reason: "Fallback",
			Message: fmt.Sprintf("carries group %s on %d of %d nodes, which see the gateways of newer members (%s) down", groupName, carrying, selected, by),
		}}
		return st
	}
	st.State, st.Nodes = v1.StateStandby, "-"
	st.Conditions = []metav1.Condition{{
		Type: v1.ConditionActive, Status: metav1.ConditionFalse, Reason: "Standby",
		Message: fmt.Sprintf("the newer member %s carries group %s's traffic; delete it to fail back to this one", by, groupName),
	}}
	return st
}

// newest is the status of its group's newest member: on how many of the
// nodes it selects it is applied, and which fail.
func newest(name, groupName string, states []v1.StaticRouteNodeState) v1.StaticRouteStatus {
	st := v1.StaticRouteStatus{State: v1.StateActive}
	var failing, fallback []string
	conflicted := ""
	for _, ns := range states {
		g, ok := groupState(ns, groupName)
		if !ok {
			continue
		}
		st.NodesSelected++
		switch {
		case g.ActiveMember != name && g.Selection == v1.SelectionNewerDown:
			// The node sees this member's gateway down and carries the
			// group on an older member: not a failure.
			st.NodesOnFallback++
			fallback = append(fallback, ns.Name)
		case g.ActiveMember != name:
			// The node has not caught up with this member yet.
			st.NodesFailed++
			failing = append(failing, ns.Name)
		case g.State == v1.NodeGroupApplied:
			st.NodesApplied++
		case g.State == v1.NodeGroupConflicted:
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
	active := metav1.Condition{Type: v1.ConditionActive, Status: metav1.ConditionTrue, Reason: "NewestMember", Message: "this is the newest member of group " + groupName}
	if conflicted != "" {
		active.Reason, active.Message = "Conflicted", conflicted
	}
	st.Conditions = []metav1.Condition{active, appliedCondition(st, fallback)}
	return st
}

// appliedCondition is the condition Applied of the newest member.
func appliedCondition(st v1.StaticRouteStatus, fallback []string) metav1.Condition {
	switch {
	case st.NodesSelected == 0:
		return metav1.Condition{Type: v1.ConditionApplied, Status: metav1.ConditionFalse, Reason: "NoNodes", Message: "no node reports this route: none is selected, or no router runs"}
	case st.NodesFailed > 0:
		return metav1.Condition{Type: v1.ConditionApplied, Status: metav1.ConditionFalse, Reason: "NodesFailing",
			Message: fmt.Sprintf("%d of %d selected nodes have not applied it: %s", st.NodesFailed, st.NodesSelected, strings.Join(st.FailingNodes, ", "))}
	case st.NodesOnFallback > 0:
		slices.Sort(fallback)
		return metav1.Condition{Type: v1.ConditionApplied, Status: metav1.ConditionTrue, Reason: "SomeOnFallback",
			Message: fmt.Sprintf("applied on %d of %d selected nodes; %d see its gateway down and carry the group on an older member: %s",
				st.NodesApplied, st.NodesSelected, st.NodesOnFallback, strings.Join(fallback[:min(len(fallback), v1.MaxFailingNodeNames)], ", "))}
	}
	return metav1.Condition{Type: v1.ConditionApplied, Status: metav1.ConditionTrue, Reason: "AllNodes", Message: fmt.Sprintf("applied on all %d selected nodes", st.NodesSelected)}
}

// groupState is a node's report of group, if the group selects it.
func groupState(ns v1.StaticRouteNodeState, group string) (v1.NodeGroupState, bool) {
	i := slices.IndexFunc(ns.Status.Groups, func(g v1.NodeGroupState) bool { return g.Group == group })
	if i < 0 {
		return v1.NodeGroupState{}, false
	}
	return ns.Status.Groups[i], true
}

// gatewayReachable is the condition GatewayReachable of a member with a
// health check: how many of the nodes that probe its gateway see it down.
// nil if no node reports probing it.
func gatewayReachable(member, groupName string, states []v1.StaticRouteNodeState) *metav1.Condition {
	// Per gateway of the member (one, or each of spec.gateways): the
	// nodes that probe it, and those that see it down.
	var gateways []string
	total := map[string]int{}
	down := map[string][]string{}
	for _, ns := range states {
		g, ok := groupState(ns, groupName)
		if !ok {
			continue
		}
		for _, h := range g.Gateways {
			if h.Member != member {
				continue
			}
			if total[h.Gateway] == 0 {
				gateways = append(gateways, h.Gateway)
			}
			total[h.Gateway]++
			if h.Health == v1.GatewayDown {
				down[h.Gateway] = append(down[h.Gateway], ns.Name)
			}
		}
	}
	if len(gateways) == 0 {
		return nil
	}
	slices.Sort(gateways)
	c := &metav1.Condition{Type: v1.ConditionGatewayReachable, Status: metav1.ConditionTrue, Reason: "UpOnAllNodes"}
	var msgs []string
	allDown := true
	for _, gw := range gateways {
		d := down[gw]
		if len(d) == 0 {
			allDown = false
			continue
		}
		slices.Sort(d)
		allDown = allDown && len(d) == total[gw]
		msgs = append(msgs, fmt.Sprintf("gateway %s is down as %d of %d nodes see it: %s", gw, len(d), total[gw], strings.Join(d[:min(len(d), v1.MaxFailingNodeNames)], ", ")))
	}
	if len(msgs) == 0 {
		what := "gateway " + gateways[0] + " is"
		if len(gateways) > 1 {
			what = "gateways " + strings.Join(gateways, ", ") + " are"
		}
		c.Message = fmt.Sprintf("%s up as all %d nodes that probe it see it", what, total[gateways[0]])
		return c
	}
	c.Status, c.Reason, c.Message = metav1.ConditionFalse, "DownOnSomeNodes", strings.Join(msgs, "; ")
	if allDown {
		c.Reason = "DownOnAllNodes"
	}
	return c
}
