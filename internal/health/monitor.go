// Package health runs a node's health checks: one prober per path, its
// results folded into the path's health (group.Health, with hysteresis),
// and a poke to the reconcile loop when a health changes. It needs no API
// server: the node decides from its own probes.
package health

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
)

// Monitor runs the probes the last desired state named.
type Monitor struct {
	// Mark is the mark of a slot's probes (policy.Options.ProbeMark).
	Mark func(slot int) uint32
	// Changed is called, without locks held, when a path goes up or down.
	Changed func()
	Log     logr.Logger
	Metrics *Metrics
	// Damping is the flap damping of every path (zero: none).
	Damping group.Damping
	// open opens a prober (tests replace it).
	open func(p group.Path, mark uint32, id int) (prober, error)

	mu     sync.Mutex
	loops  map[policy.Probe]*loop
	health map[group.Path]*group.Health
}

type loop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Set runs exactly the probes of ps: new ones start at once, gone ones
// stop, and a path's health outlives a change of its probe's settings or
// slot. Call it after every apply with the desired state's probes.
func (m *Monitor) Set(ctx context.Context, ps []policy.Probe) {
	var stopped []*loop
	defer func() {
		// Outside the lock: a stopping loop may be waiting for it.
		for _, l := range stopped {
			<-l.done
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loops == nil {
		m.loops, m.health = map[policy.Probe]*loop{}, map[group.Path]*group.Health{}
	}
	want := map[policy.Probe]bool{}
	paths := map[group.Path]bool{}
	for _, p := range ps {
		want[p], paths[p.Path] = true, true
	}
	for p, l := range m.loops {
		if !want[p] {
			l.cancel()
			stopped = append(stopped, l)
			delete(m.loops, p)
		}
	}
	for path := range m.health {
		if !paths[path] {
			delete(m.health, path)
			m.Metrics.forget(path)
		}
	}
	for _, p := range ps {
		if _, ok := m.loops[p]; ok {
			continue
		}
		if _, ok := m.health[p.Path]; !ok {
			m.health[p.Path] = &group.Health{}
			m.Metrics.observe(p.Path, group.Health{}, Result{})
		}
		lctx, cancel := context.WithCancel(ctx)
		l := &loop{cancel: cancel, done: make(chan struct{})}
		m.loops[p] = l
		go m.run(lctx, p, l.done)
	}
}

// Health is every path's health now: what decides (policy.Input.Health)
// and what is reported.
func (m *Monitor) Health() map[group.Path]group.Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[group.Path]group.Health, len(m.health))
	for p, h := range m.health {
		out[p] = *h
	}
	return out
}

// run probes p every period until ctx ends. A probe waits at most its
// timeout, which is at most the period, so probes never overlap.
func (m *Monitor) run(ctx context.Context, p policy.Probe, done chan struct{}) {
	defer close(done)
	open := m.open
	if open == nil {
		open = newProber
	}
	log := m.Log.WithValues("path", p.Path.String(), "slot", p.Slot)
	pr, err := open(p.Path, m.Mark(p.Slot), os.Getpid()<<6|p.Slot)
	if err != nil {
		log.Error(err, "cannot probe: the path keeps its health until the probe can run")
		return
	}
	defer pr.close()
	log.V(1).Info("probing", "every", p.Period.String(), "timeout", p.Timeout.String())
	defer log.V(1).Info("stopped probing")
	tick := time.NewTicker(p.Period)
	defer tick.Stop()
	var complained bool
	for {
		r := pr.probe(ctx, p.Timeout)
		if ctx.Err() != nil {
			return
		}
		if r.Err != nil && !complained {
			log.Error(r.Err, "probe not sent: counted as lost")
			complained = true
		}
		now := time.Now()
		m.mu.Lock()
		h, ok := m.health[p.Path]
		changed := false
		var seen group.Health
		if ok {
			changed = h.Observe(p.Probe, m.Damping, r.Answered, r.RTT, now)
			seen = *h
			m.Metrics.observe(p.Path, seen, r)
		}
		m.mu.Unlock()
		if changed {
			kv := []any{"gateway", p.Gateway.String(), "target", p.Target.String(), "changes", seen.Flaps}
			if now.Before(seen.DampedUntil) {
				kv = append(kv, "dampedUntil", seen.DampedUntil.UTC().Format(time.RFC3339))
			}
			log.Info("gateway "+strings.ToLower(seen.State(now).String()), kv...)
			if m.Changed != nil {
				m.Changed()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
