package router

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// FieldOwner is the router's server-side-apply field manager.
const FieldOwner = "staticroute-node-router"

// NodeStateWriter writes a StaticRouteNodeState by server-side apply.
type NodeStateWriter interface {
	ApplyNodeState(ctx context.Context, obj *v1.StaticRouteNodeState, fieldManager string) error
}

// EventRecorder records an events.k8s.io Event (client-go's
// tools/events.EventRecorder has this method too).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Reporter writes the node's StaticRouteNodeState, only when it changes.
// Routers never read these objects back: what was last written is kept in
// memory, and a restart writes once.
type Reporter struct {
	Writer NodeStateWriter
	// Events, if set, records an Event on a group's active StaticRoute
	// when the group's state on this node changes, and only then.
	Events EventRecorder
	last   *v1.StaticRouteNodeStateStatus
}

// Outcome is what one reconcile did, as a node state reports it.
type Outcome struct {
	Node    *corev1.Node
	Routes  []*v1.StaticRoute // sorted by name, for Events
	Desired policy.Desired
	Facts   policy.Node
	Cluster validate.Config
	Health  map[group.Path]group.Health
	Err     error // the kernel's or the firewall's, if either failed
	// Steering is the rule and the table that carry the routes (nil: not
	// known, as in tests).
	Steering *v1.NodeSteering
	// LaneTableBase numbers the lanes' tables (policy.Options).
	LaneTableBase int
	// Draining counts the connections that drain, per group.
	Draining map[string]int
}

// Report writes what the router did for its node.
func (p *Reporter) Report(ctx context.Context, o Outcome) error {
	node := o.Node
	status := nodeStatus(o.Desired, o.Facts, o.Cluster, o.Health, o.LaneTableBase, o.Draining, o.Err)
	status.ClusterRanges.Mismatches = append(status.ClusterRanges.Mismatches, podMismatches(o.Cluster, node)...)
	status.Steering = o.Steering
	for _, c := range o.Desired.CarveOuts {
		status.CarveOuts = append(status.CarveOuts, v1.NodeCarveOut{Prefix: c.Prefix.String(), Reason: c.Why})
	}
	if p.last != nil && equality.Semantic.DeepEqual(withoutTimes(*p.last), status) {
		return nil
	}
	p.recordTransitions(node, o.Routes, status)
	var last []metav1.Condition
	if p.last != nil {
		last = p.last.Conditions
	}
	status.Conditions = kube.Carry(last, status.Conditions)
	obj := &v1.StaticRouteNodeState{
		ObjectMeta: metav1.ObjectMeta{
			Name: node.Name,
			// Owned by the Node: garbage collection removes it with the Node.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
		},
		Status: status,
	}
	if err := p.Writer.ApplyNodeState(ctx, obj, FieldOwner); err != nil {
		return err
	}
	p.last = &status
	return nil
}

// maxEvents bounds the Events of one report: a thousand routes applied at
// once would otherwise be a thousand Events from every node.
const maxEvents = 10

func (p *Reporter) recordTransitions(node *corev1.Node, routes []*v1.StaticRoute, status v1.StaticRouteNodeStateStatus) {
	if p.Events == nil {
		return
	}
	var lastMismatches []string
	if p.last != nil {
		lastMismatches = p.last.ClusterRanges.Mismatches
	}
	if m := status.ClusterRanges.Mismatches; len(m) > 0 && !slices.Equal(m, lastMismatches) {
		p.Events.Eventf(node, nil, corev1.EventTypeWarning, "LayoutMismatch", "Layout",
			"node %s disagrees with the layout (the ConfigMap %s): %s", node.Name, validate.LayoutConfigMap, strings.Join(m, "; "))
	}
	last := map[string]v1.NodeGroupState{}
	if p.last != nil {
		for _, g := range p.last.Groups {
			last[g.Group] = g
		}
	}
	sent, more := 0, 0
	for _, g := range status.Groups {
		if o, ok := last[g.Group]; ok && o.State == g.State && o.ActiveMember == g.ActiveMember && o.Gateway == g.Gateway {
			continue
		}
		// A node's Events are for what the summarizer's cannot say: this
		// node failed or lost a conflict. That a node applied a member is
		// in its node state and, once all have, in one Event of the
		// summarizer's on the route.
		if g.State == v1.NodeGroupApplied {
			continue
		}
		i, ok := slices.BinarySearchFunc(routes, g.ActiveMember, func(sr *v1.StaticRoute, name string) int { return strings.Compare(sr.Name, name) })
		if !ok {
			continue
		}
		sr := routes[i]
		if sent == maxEvents {
			more++
			continue
		}
		sent++
		kind := corev1.EventTypeWarning
		note := fmt.Sprintf("node %s: group %s via %s: %s", node.Name, g.Group, g.Gateway, g.State)
		if g.Message != "" {
			note += ": " + g.Message
		}
		if len(note) > 1000 {
			note = note[:1000]
		}
		p.Events.Eventf(sr, node, kind, g.State, "Route", "%s", note)
	}
	if more > 0 {
		p.Events.Eventf(node, nil, corev1.EventTypeNormal, "ManyGroupsChanged", "Route",
			"node %s: %d more groups failed or conflict; see StaticRouteNodeState %s", node.Name, more, node.Name)
	}
}

// nodeStatus is the report for one desired state. It holds no timestamps
// that change on every reconcile, so an unchanged node writes nothing.
func nodeStatus(d policy.Desired, facts policy.Node, cluster validate.Config, health map[group.Path]group.Health, laneTableBase int, draining map[string]int, applyErr error) v1.StaticRouteNodeStateStatus {
	var s v1.StaticRouteNodeStateStatus
	for _, g := range d.Groups {
		gs := v1.NodeGroupState{Group: g.Name, ActiveMember: g.Active, State: g.State, Message: g.Reason, Selection: g.Selection}
		if g.Gateway.IsValid() {
			gs.Gateway = g.Gateway.String()
		}
		gs.Gateways = gatewayHealth(g.Members, health)
		gs.Lanes = nodeLanes(g, laneTableBase)
		if g.Drain != nil {
			gs.Drain = &v1.NodeDrain{Member: g.Drain.Member, Until: metav1.NewTime(g.Drain.Until), Connections: int32(draining[g.Name])}
		}
		for _, p := range g.Prefixes {
			gs.Prefixes = append(gs.Prefixes, p.String())
		}
		if applyErr != nil {
			gs.State, gs.Reason, gs.Message = v1.NodeGroupError, "ApplyFailed", applyErr.Error()
		}
		if gs.State == v1.NodeGroupApplied {
			s.AppliedCount++
		}
		s.Groups = append(s.Groups, gs)
	}
	s.GroupCount = int32(len(s.Groups))

	configured := slices.Concat(cluster.VPC, cluster.Pod, cluster.Service)
	for _, p := range configured {
		s.ClusterRanges.Configured = append(s.ClusterRanges.Configured, p.String())
	}
	for _, p := range facts.Connected {
		s.ClusterRanges.Seen = append(s.ClusterRanges.Seen, p.String())
	}
	for _, p := range cluster.VPC {
		s.ClusterRanges.VPC = append(s.ClusterRanges.VPC, p.String())
	}
	// The VPC the layout sets must be what the VPC link is connected to.
	for _, vpc := range cluster.VPC {
		if !slices.ContainsFunc(facts.OnLink, func(p netip.Prefix) bool { return p.Overlaps(vpc) }) {
			s.ClusterRanges.Mismatches = append(s.ClusterRanges.Mismatches,
				fmt.Sprintf("the VPC %s (vpcCIDRs) is not connected on %s (on-link: %v)", vpc, facts.VPCLink, facts.OnLink))
		}
	}

	ready := metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Applied", Message: "the kernel matches the desired state"}
	if applyErr != nil {
		ready = metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: "ApplyFailed", Message: applyErr.Error()}
	}
	s.Conditions = []metav1.Condition{ready, externalAgents(d, facts)}
	return s
}

// podMismatches are the node's pod CIDRs (spec.podCIDRs) that the pod
// ranges do not cover: traffic to its pods would not be carved out on
// the other nodes.
func podMismatches(cluster validate.Config, node *corev1.Node) []string {
	var out []string
	for _, s := range node.Spec.PodCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		if !slices.ContainsFunc(cluster.Pod, func(r netip.Prefix) bool { return r.Contains(p.Addr()) && r.Bits() <= p.Bits() }) {
			out = append(out, fmt.Sprintf("the node's pod CIDR %s (spec.podCIDRs) is outside the pod ranges %v (podCIDRs)", p, cluster.Pod))
		}
	}
	return out
}

// nodeLanes reports a group's lanes, with their marks and tables.
func nodeLanes(g policy.Group, tableBase int) []v1.NodeLane {
	var out []v1.NodeLane
	for _, l := range g.Lanes {
		nl := v1.NodeLane{Gateway: l.Gateway.String(), Member: g.Active, Open: l.Open, Draining: l.Draining, Mark: int32(l.Slot), Table: int32(tableBase + l.Slot)}
		if l.Draining {
			nl.Member = g.Drain.Member
		}
		if l.Away() {
			nl.To = l.To.String()
		}
		out = append(out, nl)
	}
	return out
}

// gatewayHealth is the health of the checked members' gateways.
func gatewayHealth(ms []policy.Member, health map[group.Path]group.Health) []v1.NodeGatewayHealth {
	var out []v1.NodeGatewayHealth
	for _, m := range ms {
		if !m.Checked {
			continue
		}
		for _, gw := range m.Gateways {
			out = append(out, oneGatewayHealth(m, gw, health))
		}
	}
	return out
}

func oneGatewayHealth(m policy.Member, gw policy.MemberGateway, health map[group.Path]group.Health) v1.NodeGatewayHealth {
	gh := v1.NodeGatewayHealth{Member: m.Name, Gateway: gw.Gateway.String(), Probe: gw.Probe.Path.String(), Health: gw.State.String()}
	h, probed := health[gw.Probe.Path]
	switch gw.State {
	case group.Pending:
		gh.Message = "no probe answered yet: it takes no traffic over until one is"
		if m.Carrying {
			gh.Message = "no probe answered yet since the router started: it keeps the traffic it carries until its probes decide"
		}
	case group.Damped:
		gh.Message = fmt.Sprintf("its health changed %d times of late (flap damping): it carries the group only if no other member is up", h.Flaps)
	case group.Down:
		if !probed {
			gh.Message = "its gateway is not on-link: it cannot be probed"
		}
	}
	if probed {
		if !h.Since.IsZero() {
			t := metav1.NewTime(h.Since)
			gh.LastChange = &t
		}
		if h.RTT > 0 {
			gh.RTT = h.RTT.Round(time.Microsecond).String()
		}
		if gw.State == group.Damped || gw.State == group.Down && h.DampedUntil.After(h.Since) {
			t := metav1.NewTime(h.DampedUntil.Truncate(time.Second))
			gh.DampedUntil = &t
		}
	}
	return gh
}

// externalAgents reports main-table routes via a gateway to addresses we
// steer: left over by the old operator (delete them), or written by another
// agent (the DOKS routing agent) that also steers them. Routes inside a
// carve-out (a CNI's routes to other nodes' pods) are not ours to judge.
func externalAgents(d policy.Desired, facts policy.Node) metav1.Condition {
	inside := func(kind policy.Kind, m netip.Prefix) bool {
		return slices.ContainsFunc(d.Routes, func(r policy.Route) bool {
			return r.Kind == kind && validate.Covers(r.Prefix, m)
		})
	}
	var clash []string
	for _, m := range facts.MainVia {
		if inside(policy.Via, m) && !inside(policy.Throw, m) {
			clash = append(clash, m.String())
		}
	}
	if len(clash) == 0 {
		return metav1.Condition{Type: "ExternalAgentConflict", Status: metav1.ConditionFalse, Reason: "None", Message: "no other route steers these destinations"}
	}
	slices.Sort(clash)
	if len(clash) > 5 {
		clash = append(clash[:5], fmt.Sprintf("and %d more", len(clash)-5))
	}
	return metav1.Condition{Type: "ExternalAgentConflict", Status: metav1.ConditionTrue, Reason: "MainTableRoutes",
		Message: "the main table also routes " + strings.Join(clash, ", ") + " via a gateway (the old k8s-staticroute-operator's routes, or another agent's): ours take precedence by rule; delete those routes or stop that agent"}
}

// withoutTimes is a report with its conditions' times and its probes'
// round trips cleared, to compare: neither is worth a write by itself.
func withoutTimes(s v1.StaticRouteNodeStateStatus) v1.StaticRouteNodeStateStatus {
	s.Conditions = slices.Clone(s.Conditions)
	for i := range s.Conditions {
		s.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	s.Groups = slices.Clone(s.Groups)
	for i := range s.Groups {
		s.Groups[i].Gateways = slices.Clone(s.Groups[i].Gateways)
		for j := range s.Groups[i].Gateways {
			s.Groups[i].Gateways[j].RTT = ""
		}
	}
	return s
}
