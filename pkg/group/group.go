// Package group owns what a StaticRoute group means: which routes are its
// members and which member carries its traffic. The webhook's index,
// every node's desired state, the summarizer and the kubectl plugin call
// it, so that they can never disagree on the rule.
package group

import (
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// Key is what orders the members of a group.
type Key struct {
	Created time.Time
	Name    string
}

// KeyOf is a StaticRoute's key.
func KeyOf(sr *v1.StaticRoute) Key {
	return Key{Created: sr.CreationTimestamp.Time, Name: sr.Name}
}

// Newer says whether a carries the group's traffic rather than b: the
// later creationTimestamp, then, within its one-second resolution, the
// greater name. It depends on the objects alone, not on the order they
// arrive in, so every router computes the same order.
func Newer(a, b Key) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.Name > b.Name
}

// Live says whether sr counts as a member: a route being deleted (held by
// the old operator's kopf finalizer, say) counts as gone.
func Live(sr *v1.StaticRoute) bool { return sr.DeletionTimestamp == nil }

// Members are group name's members among routes: the live ones, oldest
// first (the last carries the group when health says nothing). The
// summarizer and the plugin read a group through it.
func Members(routes []v1.StaticRoute, name string) []*v1.StaticRoute {
	var out []*v1.StaticRoute
	for i := range routes {
		if sr := &routes[i]; Live(sr) && sr.EffectiveGroup() == name {
			out = append(out, sr)
		}
	}
	Sort(out, KeyOf)
	return out
}

// Selects says whether sr's nodeSelector selects a node with
// nodeLabels; no selector selects every node. An invalid selector (the
// webhook refuses one; an object from before it may hold one) is an
// error: callers say so rather than guess.
func Selects(sr *v1.StaticRoute, nodeLabels map[string]string) (bool, error) {
	if sr.Spec.NodeSelector == nil {
		return true, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(sr.Spec.NodeSelector)
	if err != nil {
		return false, fmt.Errorf("invalid nodeSelector: %w", err)
	}
	return sel.Matches(labels.Set(nodeLabels)), nil
}

// Active is the index of the member of ms that carries the group: the
// newest of those with the highest rank (Rank: up before damped before
// pending before down); if every member is down, the newest (its gateway
// may be dead, but traffic never falls back to the node's own address:
// fail closed). rank nil ranks every member alike: the webhook and the
// summarizer, which see no probes. -1 if ms is empty.
func Active[T any](ms []T, key func(T) Key, rank func(T) int) int {
	best, bestRank := -1, 0
	for i, m := range ms {
		r := 0
		if rank != nil {
			r = rank(m)
		}
		if best < 0 || r > bestRank || r == bestRank && Newer(key(m), key(ms[best])) {
			best, bestRank = i, r
		}
	}
	return best
}

// Rank is how much a member is preferred to carry its group, from its
// gateway's state on this node: a member without a health check is
// Up. A Pending member (no probe answered yet) ranks as Up only when its
// gateway carries the group already, so that a new member on a dead
// gateway takes nothing over, and a restarted router keeps the kernel's
// choice until its probes decide; otherwise it ranks above Down alone.
func Rank(s State, carrying bool) int {
	switch {
	case s == Up, s == Pending && carrying:
		return 3
	case s == Damped:
		return 2
	case s == Pending:
		return 1
	}
	return 0
}

// Oldest is the index of the oldest member of ms, whose age is the
// group's (the older group keeps addresses another overlaps); -1 if ms is
// empty.
func Oldest[T any](ms []T, key func(T) Key) int {
	best := -1
	for i, m := range ms {
		if best < 0 || Newer(key(ms[best]), key(m)) {
			best = i
		}
	}
	return best
}

// Sort orders ms oldest first: the member that carries the group last.
func Sort[T any](ms []T, key func(T) Key) {
	slices.SortStableFunc(ms, func(a, b T) int {
		switch ka, kb := key(a), key(b); {
		case Newer(ka, kb):
			return 1
		case Newer(kb, ka):
			return -1
		}
		return 0
	})
}
