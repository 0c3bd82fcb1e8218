package netlab

import (
	"fmt"
	"slices"
	"time"

	"github.com/staticroute/staticroute/test/tb"
)

// Probers probe the echo from several namespaces at once: every node of a
// world and its pod. An answer naming a prober's own node's public
// address is a leak.
type Probers struct {
	ps  []*Prober
	own []string // per prober: the address that means a leak
}

// StartProbers starts a prober, one probe every every, on each node and
// the pod, and lets them settle.
func (w *World) StartProbers(t tb.T, every time.Duration) *Probers {
	var from []ProbeFrom
	for i, ns := range w.Nodes {
		from = append(from, ProbeFrom{NS: ns, Own: w.NodePublic(i)})
	}
	// The pod is behind node 0.
	return StartProbersFrom(t, every, append(from, ProbeFrom{NS: w.Pod, Own: w.NodePublic(0)})...)
}

// ProbeFrom is a namespace to probe from, and the address that means a
// leak there: its node's own public address.
type ProbeFrom struct {
	NS  *NS
	Own string
}

// StartProbersFrom starts a prober in each of from, one probe every
// every, and lets them settle.
func StartProbersFrom(t tb.T, every time.Duration, from ...ProbeFrom) *Probers {
	p := &Probers{}
	for _, f := range from {
		p.ps = append(p.ps, StartProber(t, f.NS, every))
		p.own = append(p.own, f.Own)
	}
	time.Sleep(300 * time.Millisecond)
	return p
}

// At is prober i: node i, or the pod after the nodes.
func (p *Probers) At(i int) *Prober { return p.ps[i] }

// Switched waits until every prober in which (nil: all) has had an answer
// via since, and returns when the last of them first did, since since,
// and which prober that was. It gives up after within.
func (p *Probers) Switched(which []int, via string, since time.Time, within time.Duration) (time.Duration, int, error) {
	var last time.Duration
	slowest := -1
	deadline := time.Now().Add(within)
	for i, pr := range p.ps {
		if which != nil && !slices.Contains(which, i) {
			continue
		}
		for {
			if at, ok := pr.FirstAfter(via, since); ok {
				if d := at.Sub(since); d >= last {
					last, slowest = d, i
				}
				break
			}
			if time.Now().After(deadline) {
				return 0, i, fmt.Errorf("prober %d: no answer via %s within %s of the change", i, via, within)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return last, slowest, nil
}

// Each is, for every prober that has had an answer via since, how long
// after since its first one came.
func (p *Probers) Each(via string, since time.Time) []time.Duration {
	var out []time.Duration
	for _, pr := range p.ps {
		if at, ok := pr.FirstAfter(via, since); ok {
			out = append(out, at.Sub(since))
		}
	}
	return out
}

// LostBetween counts the probes of every prober sent in [from, to] that
// got no answer.
func (p *Probers) LostBetween(from, to time.Time) int {
	n := 0
	for _, pr := range p.ps {
		n += pr.LostBetween(from, to)
	}
	return n
}

// Result stops the probers and counts what they sent, what came back
// naming their own node's address (leaked) and what never came back.
func (p *Probers) Result() (sent, leaked, lost int) {
	for _, pr := range p.ps {
		pr.stopSending()
	}
	// The last answers, for all at once; on a 2-core machine with
	// hundreds of nodes they take longer than the network does.
	time.Sleep(min(2*time.Second, time.Duration(len(p.ps))*5*time.Millisecond+500*time.Millisecond))
	for i, pr := range p.ps {
		s, by, l := pr.count()
		sent += s
		lost += l
		leaked += by[p.own[i]]
	}
	return sent, leaked, lost
}

// SourceChanges is, for every prober, how often its answers' source
// changed among the probes sent from from to to (Prober.SourceChanges).
func (p *Probers) SourceChanges(from, to time.Time) []int {
	out := make([]int, len(p.ps))
	for i, pr := range p.ps {
		out[i] = pr.SourceChanges(from, to)
	}
	return out
}
