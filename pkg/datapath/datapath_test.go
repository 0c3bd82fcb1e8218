package datapath

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/staticroute/staticroute/pkg/policy"
)

// dpModel is a node's datapath as Datapath's parts see it: the routes our
// tables hold, the old operator's routes in main, the links and their
// src_valid_mark, and the record in our firewall table. Its parts check,
// at every call, what Datapath.Apply's order promises, and fail where
// told.
type dpModel struct {
	t     *testing.T
	fail  string // the part that fails in this Apply ("" none)
	fired bool   // it did: it was called

	steered  []policy.Route              // our tables' routes: the last applied
	main     map[policy.LegacyRoute]bool // the old operator's routes in main
	links    map[int]bool                // ifindex → src_valid_mark on
	ours     map[int]bool                // the links we turned on: the truth
	record   []int                       // the firewall table's record (nil: no table)
	loaded   bool                        // the marks read the record (a router's memory)
	recorded []int
	nextLink int

	// This Apply: its desired state, and which steps ran.
	desired        policy.Desired
	routesDone, fw bool
	violations     []string
}

func (m *dpModel) violate(format string, a ...any) {
	m.violations = append(m.violations, fmt.Sprintf(format, a...))
}

func (m *dpModel) failing(part string) error {
	if m.fail == part {
		m.fired = true
		return errors.New(part + ": boom")
	}
	return nil
}

type dpRoutes struct{ *dpModel }

func (m dpRoutes) Apply(d policy.Desired) (Applied, error) {
	if err := m.failing("routes"); err != nil {
		return Applied{}, err
	}
	m.steered, m.routesDone = slices.Clone(d.Routes), true
	return Applied{Routes: len(d.Routes)}, nil
}

func (m dpRoutes) RemoveLegacyRoutes(l map[policy.LegacyRoute]bool) ([]policy.LegacyRoute, error) {
	if !m.routesDone || !slices.Equal(m.steered, m.desired.Routes) {
		m.violate("the old operator's routes removed before ours steer their destinations")
	}
	if err := m.failing("legacy"); err != nil {
		return nil, err
	}
	var removed []policy.LegacyRoute
	for r := range l {
		if m.main[r] {
			delete(m.main, r)
			removed = append(removed, r)
		}
	}
	return removed, nil
}

func (m dpRoutes) Draining(policy.Desired) (map[string]int, error) {
	if !m.fw {
		m.violate("the draining connections counted before the firewall put them in their lanes")
	}
	return nil, nil
}

type dpFirewall struct{ *dpModel }

func (m dpFirewall) Apply(_ policy.Desired, marked []int) (bool, error) {
	if !m.routesDone {
		m.violate("the firewall written before the routes")
	}
	if err := m.failing("firewall"); err != nil {
		return false, err
	}
	for l := range m.ours {
		if !slices.Contains(marked, l) {
			m.violate("the firewall's record %v loses link %d, which we turned on: --cleanup could not restore it", marked, l)
		}
	}
	m.record, m.fw = slices.Clone(marked), true
	return true, nil
}

func (m dpFirewall) Counters() (map[string]Counter, error) {
	if !m.routesDone || m.fw {
		m.violate("the counters read before the switch, or after the firewall reset them")
	}
	return map[string]Counter{}, m.failing("counters")
}

type dpMarks struct{ *dpModel }

// Read is ValidMarks.Read's contract: the record read once, then the
// links off to turn on and record, and those on that the record holds.
func (m dpMarks) Read() (MarkPlan, error) {
	if !m.loaded {
		if err := m.failing("record"); err != nil {
			return MarkPlan{}, err
		}
		m.recorded, m.loaded = slices.Clone(m.record), true
	}
	if err := m.failing("links"); err != nil {
		return MarkPlan{Record: m.recorded, Known: true}, err
	}
	p := MarkPlan{Known: true}
	for _, l := range slices.Sorted(maps.Keys(m.links)) {
		switch {
		case !m.links[l]:
			p.TurnOn = append(p.TurnOn, l)
			p.Record = append(p.Record, l)
		case slices.Contains(m.recorded, l):
			p.Record = append(p.Record, l)
		}
	}
	m.recorded = p.Record
	return p, nil
}

func (m dpMarks) TurnOn(p MarkPlan) error {
	for i, l := range p.TurnOn {
		if !slices.Contains(m.record, l) {
			m.violate("link %d turned on before the firewall's record %v holds it", l, m.record)
		}
		if i == len(p.TurnOn)/2 {
			if err := m.failing("turn on"); err != nil {
				return err
			}
		}
		m.links[l], m.ours[l] = true, true
	}
	return nil
}

// perturb does to the node what the world might between two applies: a
// new link (src_valid_mark off), a link deleted, the router restarted (it
// forgets the record it read), the old operator's route back in main.
func (m *dpModel) perturb(rng *rand.Rand, d policy.Desired) string {
	switch rng.IntN(5) {
	case 0:
		m.nextLink++
		m.links[m.nextLink] = false
		return fmt.Sprintf("link %d added", m.nextLink)
	case 1:
		if len(m.links) > 0 {
			l := slices.Sorted(maps.Keys(m.links))[rng.IntN(len(m.links))]
			delete(m.links, l)
			delete(m.ours, l)
			return fmt.Sprintf("link %d deleted", l)
		}
	case 2:
		m.loaded, m.recorded = false, nil
		return "the router restarted"
	case 3:
		for r := range d.Legacy {
			m.main[r] = true
			return fmt.Sprintf("%s back in main", r)
		}
	}
	return "nothing"
}

// withLegacy gives d the old operator's routes to a random half of its
// destinations via their gateway, and puts them in main.
func withLegacy(rng *rand.Rand, d policy.Desired, main map[policy.LegacyRoute]bool) policy.Desired {
	d.Legacy = nil
	for _, r := range d.Routes {
		if r.Kind == policy.Via && rng.IntN(2) == 0 {
			if d.Legacy == nil {
				d.Legacy = map[policy.LegacyRoute]bool{}
			}
			l := policy.LegacyRoute{Dst: r.Prefix, Gateway: r.Gateway}
			d.Legacy[l], main[l] = true, true
		}
	}
	return d
}

// Whatever states follow one another, whichever part fails and whatever
// the node does in between (links come and go, the router restarts),
// Datapath.Apply never removes an old route before ours steer it, never
// turns a link's src_valid_mark on before the firewall records it, never
// writes a record that loses a link it turned on, reads the counters
// between the switch and the firewall's rewrite, and reaches the desired
// state whenever nothing failed.
func TestDatapathOrderInRandomOrder(t *testing.T) {
	rng := seeded(t)
	fails := []string{"", "", "", "routes", "counters", "legacy", "record", "links", "firewall", "turn on"}
	for run := range 200 {
		m := &dpModel{t: t, main: map[policy.LegacyRoute]bool{}, links: map[int]bool{1: false, 2: true, 3: false}, ours: map[int]bool{}, nextLink: 3}
		dp := &Datapath{Routes: dpRoutes{m}, Firewall: dpFirewall{m}, Marks: dpMarks{m}}
		var story []string
		for step := range 12 {
			d := withLegacy(rng, randomDesired(rng), m.main)
			m.desired, m.routesDone, m.fw, m.fail, m.fired = d, false, false, fails[rng.IntN(len(fails))], false
			story = append(story, fmt.Sprintf("step %d: %d routes, %d old ones, %q fails", step, len(d.Routes), len(d.Legacy), m.fail))
			a, err := dp.Apply(d)
			switch failed := m.fired && m.fail != "counters"; {
			case !failed && err != nil:
				t.Fatalf("run %d: Apply with nothing failing = %v\n%s", run, err, strings.Join(story, "\n"))
			case !failed:
				m.reached(d)
			case err == nil:
				t.Fatalf("run %d: %s failed and Apply returned no error\n%s", run, m.fail, strings.Join(story, "\n"))
			}
			if a.Steered != m.routesDone {
				m.violate("Applied.Steered is %t, the routes written: %t", a.Steered, m.routesDone)
			}
			if len(m.violations) > 0 {
				t.Fatalf("run %d:\n%s\n%s", run, strings.Join(story, "\n"), strings.Join(m.violations, "\n"))
			}
			story = append(story, "  then "+m.perturb(rng, d))
		}
	}
}

// reached checks that the node is as d says, after an Apply where nothing
// failed: our routes, none of d's old routes in main, every link's mark
// on, every link we turned on recorded.
func (m *dpModel) reached(d policy.Desired) {
	if !slices.Equal(m.steered, d.Routes) {
		m.violate("the routes are not d's")
	}
	for l := range d.Legacy {
		if m.main[l] {
			m.violate("%s still in main", l)
		}
	}
	for l, on := range m.links {
		if !on {
			m.violate("link %d's src_valid_mark off", l)
		}
	}
	for l := range m.ours {
		if !slices.Contains(m.record, l) {
			m.violate("link %d we turned on is not recorded (%v)", l, m.record)
		}
	}
}
