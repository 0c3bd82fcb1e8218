package router

import (
	"context"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// The reconciler's parts are small interfaces, so that what it does in
// which order (nothing after a failed apply, the record of the links before
// they change, always a report) is tested without a kernel or an API
// server. The real ones are policy's and this package's.

// Steering reads the node and steers its routes: *policy.Kernel.
type Steering interface {
	ReadNode(vpcLink string, vpc []netip.Prefix) (policy.Node, error)
	Apply(policy.Desired) (policy.Applied, error)
	RemoveLegacyRoutes(map[policy.LegacyRoute]bool) ([]policy.LegacyRoute, error)
	// Carried is the gateway each group's nexthop names in the kernel.
	Carried(groups []string) (map[string]netip.Addr, error)
}

// Firewall marks what must not be steered: *policy.Firewall.
type Firewall interface {
	Apply(policy.Desired) (changed bool, err error)
	Counters() (map[string]policy.Counter, error)
}

// Marks turns on src_valid_mark on the node's links, recording them first:
// *policy.ValidMarks.
type Marks interface {
	Plan() ([]int, error)
	TurnOn([]int) error
}

// NodeReporter reports what the router did: *Reporter.
type NodeReporter interface {
	Report(ctx context.Context, node *corev1.Node, routes []*v1.StaticRoute, d policy.Desired, facts policy.Node, cluster validate.Config, health map[group.Path]group.Health, applyErr error) error
}

// Health is the node's health checks: every path's health now, and which
// probes to run: *health.Monitor.
type Health interface {
	Health() map[group.Path]group.Health
	Set(ctx context.Context, probes []policy.Probe)
}

var (
	_ Steering     = (*policy.Kernel)(nil)
	_ Firewall     = (*policy.Firewall)(nil)
	_ Marks        = (*policy.ValidMarks)(nil)
	_ NodeReporter = (*Reporter)(nil)
)
