package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
)

// CLI runs the plugin's commands against one cluster.
type CLI struct {
	Client client.Client
	Out    io.Writer
	// Poll is how often node states are read while waiting.
	Poll time.Duration
}

// Failover creates a new member of group via gateway, with the active
// member's destinations and nodeSelector, and waits until every node it
// selects routes it, or timeout.
func (c *CLI) Failover(ctx context.Context, group, gateway, name string, dryRun bool, timeout time.Duration) error {
	ms, err := c.members(ctx, group)
	if err != nil {
		return err
	}
	active := ms[len(ms)-1]
	if name == "" {
		name = group + "-" + strings.ReplaceAll(gateway, ".", "-")
	}
	sr := &v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.StaticRouteSpec{
			Group:        group,
			Destinations: active.Spec.Destinations,
			Gateway:      gateway,
			NodeSelector: active.Spec.NodeSelector,
		},
	}
	var opts []client.CreateOption
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := c.Client.Create(ctx, sr, opts...); err != nil {
		return explain(err, "creating StaticRoute "+name)
	}
	if dryRun {
		fmt.Fprintf(c.Out, "StaticRoute %s would fail group %s over from %s (via %s) to %s (server dry run: admitted)\n", name, group, active.Name, active.Spec.Gateway, gateway)
		return nil
	}
	fmt.Fprintf(c.Out, "StaticRoute %s created: group %s fails over from %s (via %s) to via %s\n", name, group, active.Name, active.Spec.Gateway, gateway)
	return c.wait(ctx, sr, group, name, time.Now(), timeout)
}

// Failback deletes the newest member of group and waits until every node
// routes the one before it.
func (c *CLI) Failback(ctx context.Context, group string, timeout time.Duration) error {
	ms, err := c.members(ctx, group)
	if err != nil {
		return err
	}
	if len(ms) < 2 {
		return fmt.Errorf("group %s has one member, %s: failback needs an older one to go back to", group, ms[0].Name)
	}
	newest, back := ms[len(ms)-1], ms[len(ms)-2]
	if err := c.Client.Delete(ctx, newest); err != nil {
		return explain(err, "deleting StaticRoute "+newest.Name)
	}
	fmt.Fprintf(c.Out, "StaticRoute %s deleted: group %s goes back to %s (via %s)\n", newest.Name, group, back.Name, back.Spec.Gateway)
	return c.wait(ctx, back, group, back.Name, time.Now(), timeout)
}

// wait prints each selected node as it comes to route member, and fails
// naming those that did not within timeout.
func (c *CLI) wait(ctx context.Context, sr *v1.StaticRoute, group, member string, since time.Time, timeout time.Duration) error {
	var nodes corev1.NodeList
	if err := c.Client.List(ctx, &nodes); err != nil {
		return explain(err, "listing Nodes")
	}
	want, err := selected(sr, nodes.Items)
	if err != nil {
		return fmt.Errorf("the nodeSelector of %s: %w", sr.Name, err)
	}
	pending := map[string]bool{}
	for _, n := range want {
		pending[n] = true
	}
	poll := c.Poll
	if poll == 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.After(timeout)
	for len(pending) > 0 {
		var states v1.StaticRouteNodeStateList
		if err := c.Client.List(ctx, &states); err != nil {
			return explain(err, "listing StaticRouteNodeStates")
		}
		for i := range states.Items {
			s := &states.Items[i]
			if pending[s.Name] && routes(s, group, member) {
				delete(pending, s.Name)
				fmt.Fprintf(c.Out, "  %s routes %s via %s (%s)\n", s.Name, member, sr.Spec.Gateway, time.Since(since).Round(time.Millisecond))
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			var late []string
			for _, n := range want {
				if pending[n] {
					late = append(late, n)
				}
			}
			return fmt.Errorf("after %s, %d of %d nodes do not report routing %s: %s (kubectl get staticroutenodestate NODE -o yaml says why)",
				timeout, len(late), len(want), member, strings.Join(late, ", "))
		case <-time.After(poll):
		}
	}
	fmt.Fprintf(c.Out, "all %d selected nodes route %s\n", len(want), member)
	return nil
}

// Status prints the members of the group only (all groups if empty) and what each
// node routes for it.
func (c *CLI) Status(ctx context.Context, only string) error {
	var routes v1.StaticRouteList
	if err := c.Client.List(ctx, &routes); err != nil {
		return explain(err, "listing StaticRoutes")
	}
	var states v1.StaticRouteNodeStateList
	if err := c.Client.List(ctx, &states); err != nil {
		return explain(err, "listing StaticRouteNodeStates")
	}
	var groups []string
	for _, r := range routes.Items {
		if g := r.EffectiveGroup(); (only == "" || g == only) && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		if only != "" {
			return noGroup(only)
		}
		fmt.Fprintln(c.Out, "no StaticRoutes")
		return nil
	}
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	for _, g := range groups {
		if err := printGroup(w, g, routes.Items, states.Items); err != nil {
			return err
		}
	}
	return w.Flush()
}

// printGroup prints group g's members, and each node's report of it.
func printGroup(w *tabwriter.Writer, g string, routes []v1.StaticRoute, states []v1.StaticRouteNodeState) error {
	ms := group.Members(routes, g)
	var reports []v1.NodeGroupState
	var nodes []string
	for _, s := range states {
		for _, gs := range s.Status.Groups {
			if gs.Group == g {
				reports, nodes = append(reports, gs), append(nodes, s.Name)
			}
		}
	}
	fmt.Fprintf(w, "GROUP %s\n", g)
	// The roles follow the group rule; the counts are the node reports
	// printed below (not the summary in the StaticRoutes' status, which
	// may be older).
	fmt.Fprintln(w, "  MEMBER\tGATEWAY\tCREATED\tROLE\tNODES\tON FALLBACK\tHEALTH CHECK")
	for i, row := range memberRows(ms, reports) {
		m := ms[i]
		check := "-"
		if p, ok := group.ProbeOf(m); ok {
			check = p.String()
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.Name, strings.Join(m.GatewayList(), ","), m.CreationTimestamp.UTC().Format(time.RFC3339), row.Role, row.Nodes, row.OnFallback, check)
	}
	// The members' table and the nodes' are aligned apart.
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "  NODE\tMEMBER\tGATEWAY\tSTATE\tWHY\tGATEWAYS AS THE NODE SEES THEM\tMESSAGE")
	for i, gs := range reports {
		why := string(gs.Selection)
		if why == "" {
			why = string(v1.SelectionNewest)
		}
		if d := gs.Drain; d != nil {
			why += fmt.Sprintf(", %s draining %d connections until %s", d.Member, d.Connections, d.Until.UTC().Format(time.RFC3339))
		}
		seen := "-"
		if len(gs.Gateways) > 0 {
			seen = strings.Join(gatewaysSeen(gs.Gateways), "; ")
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", nodes[i], gs.ActiveMember, gs.Gateway, gs.State, why, seen, gs.Message)
	}
	return nil
}

// gatewaysSeen is how a node sees each member's gateway, one entry for
// each gateway (members that share one share its probe).
func gatewaysSeen(hs []v1.NodeGatewayHealth) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		e := fmt.Sprintf("%s %s", h.Gateway, h.Health)
		if h.RTT != "" && h.Health == v1.GatewayUp {
			e += " rtt " + h.RTT
		}
		if h.DampedUntil != nil {
			e += " until " + h.DampedUntil.UTC().Format(time.RFC3339)
		}
		if h.LastChange != nil {
			e += " since " + h.LastChange.UTC().Format(time.RFC3339)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func (c *CLI) members(ctx context.Context, name string) ([]*v1.StaticRoute, error) {
	var routes v1.StaticRouteList
	if err := c.Client.List(ctx, &routes); err != nil {
		return nil, explain(err, "listing StaticRoutes")
	}
	ms := group.Members(routes.Items, name)
	if len(ms) == 0 {
		return nil, noGroup(name)
	}
	return ms, nil
}

func noGroup(group string) error {
	return fmt.Errorf("no StaticRoute in group %q: `kubectl staticroute status` lists the groups", group)
}

// explain turns the API's answers into what to do: the webhook's own
// message is kept whole.
func explain(err error, what string) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed calling webhook"):
		return fmt.Errorf("%s: the staticroute webhook does not answer, so nothing can be checked and the API server refuses (is staticroute-webhook running in staticroute-system?): %w", what, err)
	case apierrors.IsInvalid(err), apierrors.IsForbidden(err), apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s: %s", what, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}
