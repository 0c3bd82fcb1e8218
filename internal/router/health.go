package router

import (
	"context"
	"net/netip"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
)

// healthStates is each path's state at now, and how long until the first
// damped path is released (0: none is damped): the reconcile that
// releases it must run then, whether or not a probe changes anything.
func healthStates(health map[group.Path]group.Health, now time.Time) (map[group.Path]group.State, time.Duration) {
	out := make(map[group.Path]group.State, len(health))
	var release time.Duration
	for p, h := range health {
		s := h.State(now)
		out[p] = s
		if s == group.Damped {
			if d := h.DampedUntil.Sub(now); release == 0 || d < release {
				release = d
			}
		}
	}
	return out, release
}

// carriedNow is the gateway each group takes now, and where each lane
// leads: the last successful apply's (r.applied), or, before the first,
// the kernel's, which a restarted router keeps until its probes decide.
// A kernel that cannot be read carries nothing: every pending member then
// counts as unproven, and the newest carries its group, as on a node that
// never ran a router.
func (r *Reconciler) carriedNow(ctx context.Context, routes []*v1.StaticRoute) (map[string]netip.Addr, map[int]netip.Addr) {
	if r.applied != nil {
		carried := make(map[string]netip.Addr, len(r.applied))
		laneTo := map[int]netip.Addr{}
		for name, g := range r.applied {
			if g.Gateway.IsValid() {
				carried[name] = g.Gateway
			}
			for _, l := range g.Lanes {
				laneTo[l.Slot] = l.To
			}
		}
		return carried, laneTo
	}
	seen := map[string]bool{}
	var groups []string
	for _, sr := range routes {
		if g := sr.EffectiveGroup(); group.Live(sr) && !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	carried, laneTo, err := r.Kernel.Carried(groups)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "reading which gateways the kernel uses: pending members count as unproven")
		return nil, nil
	}
	return carried, laneTo
}
