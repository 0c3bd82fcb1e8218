// Package cli is the kubectl staticroute plugin: failover, failback and
// status of a group, read from StaticRoutes and the nodes' reports.
package cli

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
)

// selected are the names of the nodes a member's nodeSelector selects.
func selected(sr *v1.StaticRoute, nodes []corev1.Node) ([]string, error) {
	var out []string
	for _, n := range nodes {
		ok, err := group.Selects(sr, n.Labels)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// routes says whether a node's report shows it routing group via member.
func routes(s *v1.StaticRouteNodeState, group, member string) bool {
	if s == nil {
		return false
	}
	for _, g := range s.Status.Groups {
		if g.Group == group {
			return g.ActiveMember == member && g.State == v1.NodeGroupApplied
		}
	}
	return false
}

// memberRow is what the status prints of one member, counted from the
// node states printed under it, so that the two can never disagree (the
// summarizer's status of the StaticRoute may be seconds older).
type memberRow struct {
	Role string // Active (the group rule's), Fallback (older, carrying on some nodes) or Standby
	// Nodes is "carrying/reporting": the nodes whose report shows the
	// member applied, of the nodes that report the group; "-" for a
	// standby.
	Nodes string
	// OnFallback counts, for the active member, the reporting nodes on an
	// older member.
	OnFallback int
}

// memberRows are ms's rows (ms oldest first, the active one last) from
// the group's reports, one per node.
func memberRows(ms []*v1.StaticRoute, reports []v1.NodeGroupState) []memberRow {
	out := make([]memberRow, len(ms))
	for i, m := range ms {
		carrying, applied := 0, 0
		for _, r := range reports {
			if r.ActiveMember == m.Name {
				carrying++
				if r.State == v1.NodeGroupApplied {
					applied++
				}
			}
		}
		row := memberRow{Role: v1.StateStandby, Nodes: "-"}
		switch {
		case i == len(ms)-1:
			row.Role = v1.StateActive
			row.Nodes = fmt.Sprintf("%d/%d", applied, len(reports))
			row.OnFallback = len(reports) - carrying
		case carrying > 0:
			row.Role = v1.StateFallback
			row.Nodes = fmt.Sprintf("%d/%d", applied, len(reports))
		}
		out[i] = row
	}
	return out
}
