package router

import (
	"context"
	"net/netip"

	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
)

// The reconciler's parts are small interfaces, so that what it does (read,
// compute, apply, always a report) is tested without a kernel or an API
// server. The real ones are policy's and this package's.

// Steering reads the node and what its kernel carries: *datapath.Kernel.
type Steering interface {
	ReadNode(h datapath.VPCHint) (policy.Node, error)
	// Carried is the gateway each group's nexthop names in the kernel,
	// and where each lane's nexthop leads, by slot.
	Carried(groups []string) (map[string]netip.Addr, map[int]netip.Addr, error)
}

// Datapath writes a desired state, all of it, in its own safe order:
// *datapath.Datapath.
type Datapath interface {
	Apply(policy.Desired) (datapath.Applied, error)
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
	_ Steering     = (*datapath.Kernel)(nil)
	_ Datapath     = (*datapath.Datapath)(nil)
	_ NodeReporter = (*Reporter)(nil)
)
