package router

import (
	"context"
	"net/netip"

	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
)

// The reconciler's parts are small interfaces, so that what it does in
// which order (nothing after a failed apply, the record of the links before
// they change, always a report) is tested without a kernel or an API
// server. The real ones are policy's and this package's.

// Steering reads the node and steers its routes: *policy.Kernel.
type Steering interface {
	ReadNode(h policy.VPCHint) (policy.Node, error)
	Apply(policy.Desired) (policy.Applied, error)
	RemoveLegacyRoutes(map[policy.LegacyRoute]bool) ([]policy.LegacyRoute, error)
	// Carried is the gateway each group's nexthop names in the kernel.
	Carried(groups []string) (map[string]netip.Addr, error)
}

// Firewall marks what must not be steered: *policy.Firewall.
type Firewall interface {
	Apply(d policy.Desired, marked []int) (changed bool, err error)
	Counters() (map[string]policy.Counter, error)
}

// Marks turns on src_valid_mark on the node's links, recording them first:
// *policy.ValidMarks.
type Marks interface {
	Read() (policy.MarkPlan, error)
	TurnOn(policy.MarkPlan) error
}

// NodeReporter reports what the router did: *Reporter.
type NodeReporter interface {
	Report(ctx context.Context, o Outcome) error
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
