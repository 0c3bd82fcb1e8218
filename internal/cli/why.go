package cli

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// Why prints, for addr on node (every node if empty), which group and
// member steer it and through which gateway, the rule and table that
// carry it; or, if it is not steered, what keeps it direct. It reads the
// nodes' StaticRouteNodeStates only.
func (c *CLI) Why(ctx context.Context, address, node string) error {
	addr, err := netip.ParseAddr(address)
	if err != nil || !addr.Is4() {
		return fmt.Errorf("%q is not an IPv4 address: give one such as 192.0.2.7", address)
	}
	var states []v1.StaticRouteNodeState
	if node != "" {
		var s v1.StaticRouteNodeState
		if err := c.Client.Get(ctx, client.ObjectKey{Name: node}, &s); err != nil {
			return explain(err, "reading the StaticRouteNodeState of node "+node)
		}
		states = append(states, s)
	} else {
		var l v1.StaticRouteNodeStateList
		if err := c.Client.List(ctx, &l); err != nil {
			return explain(err, "listing StaticRouteNodeStates")
		}
		states = l.Items
	}
	if len(states) == 0 {
		fmt.Fprintln(c.Out, "no node reports a state: no node router runs")
	}
	for _, s := range states {
		fmt.Fprintf(c.Out, "%s: %s\n", s.Name, addr)
		for _, l := range whyLines(addr, s.Status) {
			fmt.Fprintf(c.Out, "  %s\n", l)
		}
	}
	return nil
}

// whyLines explains what a node whose state is s does with addr: the
// longest prefix that holds it decides, between a group's destinations
// (steered) and a carve-out (thrown back to main), as in the node's
// steering table.
func whyLines(addr netip.Addr, s v1.StaticRouteNodeStateStatus) []string {
	var best *v1.NodeGroupState
	bestBits, prefix := -1, ""
	for i, g := range s.Groups {
		for _, p := range g.Prefixes {
			if pp, err := netip.ParsePrefix(p); err == nil && pp.Contains(addr) && pp.Bits() > bestBits {
				best, bestBits, prefix = &s.Groups[i], pp.Bits(), p
			}
		}
	}
	carve, carveBits := "", -1
	for _, c := range s.CarveOuts {
		if pp, err := netip.ParsePrefix(c.Prefix); err == nil && pp.Contains(addr) && pp.Bits() > carveBits {
			carve, carveBits = c.Reason, pp.Bits()
		}
	}
	switch {
	case best != nil && bestBits > carveBits:
		return steeredLines(*best, prefix, s.Steering)
	case best != nil:
		return []string{fmt.Sprintf("not steered: inside %s, which this node never steers (group %s's %s holds it too, but the narrower carve-out wins: the steering table throws it back to main)", carve, best.Group, prefix)}
	case carve != "":
		return []string{fmt.Sprintf("not steered: no group that selects this node has a destination holding it; it is inside %s, which is never steered anyway", carve)}
	}
	return []string{"not steered: no group that selects this node has a destination holding it; it leaves by the node's main table"}
}

// steeredLines says how group g steers prefix.
func steeredLines(g v1.NodeGroupState, prefix string, st *v1.NodeSteering) []string {
	out := []string{
		fmt.Sprintf("steered by group %s, member %s, via gateway %s", g.Group, g.ActiveMember, g.Gateway),
		"a new connection takes " + g.Gateway + ": " + selectionWhy(g),
	}
	carry := fmt.Sprintf("the route %s via %s", prefix, g.Gateway)
	if len(g.Lanes) > 0 {
		out = append([]string{
			fmt.Sprintf("steered by group %s, member %s, over %s", g.Group, g.ActiveMember,
				gatewaysWord(len(slices.DeleteFunc(slices.Clone(g.Lanes), func(l v1.NodeLane) bool { return l.Draining })))),
			laneWhy(g.Lanes) + "; the member carries the group: " + selectionWhy(g),
		}, laneLines(g.Lanes)...)
		carry = fmt.Sprintf("a packet in no lane (a connection from before the lanes) takes the route %s via %s", prefix, g.Gateway)
	}
	if d := g.Drain; d != nil {
		out = append(out, fmt.Sprintf("a planned failover drains: connections opened before it keep member %s's gateways until they end or until %s (%d now)",
			d.Member, d.Until.UTC().Format(time.RFC3339), d.Connections))
	}
	if st != nil {
		carry += fmt.Sprintf(" in table %d, which ip rule priority %d (from all lookup %d) consults", st.Table, st.RulePriority, st.Table)
	}
	out = append(out, carry)
	if g.State != v1.NodeGroupApplied {
		out = append(out, fmt.Sprintf("but the group is %s on this node: %s", g.State, g.Message))
	}
	return out
}

// gatewaysWord is "its one gateway" or "its n gateways".
func gatewaysWord(n int) string {
	if n == 1 {
		return "its one gateway"
	}
	return fmt.Sprintf("its %d gateways", n)
}

// laneWhy says which gateways a new connection may take.
func laneWhy(lanes []v1.NodeLane) string {
	var open, closed []string
	for _, l := range lanes {
		switch {
		case l.Draining:
		case l.Open:
			open = append(open, l.Gateway)
		default:
			closed = append(closed, l.Gateway)
		}
	}
	s := "a new connection takes one of " + strings.Join(open, ", ") + " (round-robin), and keeps it for its life"
	if len(closed) > 0 {
		s += "; not " + strings.Join(closed, ", ") + " (down, damped or not proven yet while another is up)"
	}
	return s
}

// laneLines say where each lane's connections leave and how.
func laneLines(lanes []v1.NodeLane) []string {
	var out []string
	for _, l := range lanes {
		to := "by " + l.Gateway
		if l.To != "" {
			to = fmt.Sprintf("by %s while %s is down", l.To, l.Gateway)
		}
		on := l.Gateway
		if l.Draining {
			on = fmt.Sprintf("%s (draining, %s's)", l.Gateway, l.Member)
		}
		out = append(out, fmt.Sprintf("connections on %s leave %s: conntrack mark %#x, ip rule fwmark %#x lookup %d", on, to, l.Mark, l.Mark, l.Table))
	}
	return out
}

// selectionWhy says why the active member carries its group (the
// node's Selection), with the gateways' health as the node sees it.
func selectionWhy(g v1.NodeGroupState) string {
	var seen []string
	for _, h := range g.Gateways {
		seen = append(seen, fmt.Sprintf("%s's %s %s", h.Member, h.Gateway, h.Health))
	}
	health := ""
	if len(seen) > 0 {
		health = " (" + strings.Join(seen, ", ") + ")"
	}
	switch g.Selection {
	case v1.SelectionNewerDown:
		return "the gateways of newer members are down, damped or not proven yet" + health
	case v1.SelectionAllDown:
		return "every member's gateway is down: the newest member carries the group and its traffic fails closed, never by the node's own address" + health
	case v1.SelectionHeld:
		return "health asks for another member, but the group switched less than a probe period ago (damping); it switches when the period is over" + health
	}
	return "its member is the group's newest, and its gateway is up or has no health check" + health
}
