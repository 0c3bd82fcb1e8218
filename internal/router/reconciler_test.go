package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime/trace"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/datapath"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// parts are fake reconciler parts that log each call, in order, and fail
// where told.
type parts struct {
	calls   []string
	fail    map[string]error
	applied datapath.Applied
	mainVia []netip.Prefix
	// reported is the error the last report carried.
	reported error
	// desired is what the last apply was given.
	desired policy.Desired
	// carried is what the kernel's nexthops name.
	laneTo  map[int]netip.Addr
	carried map[string]netip.Addr
	// unknownRecord: the record of the links was never read.
	unknownRecord bool
}

func (p *parts) call(name string) error {
	p.calls = append(p.calls, name)
	return p.fail[name]
}

func (p *parts) ReadNode(datapath.VPCHint) (policy.Node, error) {
	vpc := netip.MustParsePrefix("198.51.100.0/24")
	return policy.Node{VPCLink: "vpc0", VPCAddr: netip.MustParseAddr("198.51.100.10"), VPCPrefix: vpc, OnLink: []netip.Prefix{vpc}, Connected: []netip.Prefix{vpc}, MainVia: p.mainVia}, p.call("read node")
}

func (p *parts) Apply(d policy.Desired) (datapath.Applied, error) {
	p.desired = d
	return p.applied, p.call("apply routes")
}

func (p *parts) RemoveLegacyRoutes(map[policy.LegacyRoute]bool) ([]policy.LegacyRoute, error) {
	return nil, p.call("remove legacy routes")
}

func (p *parts) Carried([]string) (map[string]netip.Addr, map[int]netip.Addr, error) {
	return p.carried, p.laneTo, p.call("read carried")
}

func (p *parts) Draining(policy.Desired) (map[string]int, error) { return nil, nil }

type fakeFirewall struct{ *parts }

func (f fakeFirewall) Apply(policy.Desired, []int) (bool, error) {
	return true, f.call("apply firewall")
}
func (f fakeFirewall) Counters() (map[string]datapath.Counter, error) {
	return nil, f.call("read counters")
}

func (p *parts) Read() (datapath.MarkPlan, error) {
	return datapath.MarkPlan{Record: []int{2}, TurnOn: []int{2}, Known: !p.unknownRecord}, p.call("record links")
}
func (p *parts) TurnOn(datapath.MarkPlan) error { return p.call("turn on links") }

func (p *parts) Report(_ context.Context, o Outcome) error {
	p.reported = o.Err
	return p.call("report")
}

func newTestReconciler(t *testing.T, p *parts, withNode bool) *Reconciler {
	t.Helper()
	nodes := cache.NewStore(cache.MetaNamespaceKeyFunc)
	if withNode {
		if err := nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}); err != nil {
			t.Fatal(err)
		}
	}
	routes := cache.NewStore(cache.MetaNamespaceKeyFunc)
	if err := routes.Add(&v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: "egress"}, Spec: v1.StaticRouteSpec{Destinations: []string{"192.0.2.0/24"}, Gateway: "198.51.100.4"}}); err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &Reconciler{
		Cache:  Cache{Node: nodes, Routes: routes, Slices: cache.NewStore(cache.MetaNamespaceKeyFunc)},
		Kernel: p, Datapath: &datapath.Datapath{Routes: p, Firewall: fakeFirewall{p}, Marks: p}, Reporter: p, Metrics: m,
		Config: Config{NodeName: "node-1", Cluster: validate.Config{VPC: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Pod: []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18")}, Service: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/18")}}, AdoptLegacyRoutes: true},
	}
}

// What a reconcile does, in which order, when a part fails: nothing is
// written after a failed step but the report, which always carries the
// error; the links are recorded before they are changed, and changed only
// once the firewall that records them is in place; the old operator's
// routes go only once ours are.
func TestReconcileOrder(t *testing.T) {
	boom := errors.New("boom")
	full := "read node, read carried, apply routes, read counters, record links, apply firewall, turn on links, report"
	tests := map[string]struct {
		withNode      bool
		mainVia       []netip.Prefix
		fail          string
		unknownRecord bool
		want          string
	}{
		"all goes well":          {withNode: true, want: full},
		"no Node: nothing":       {withNode: false, want: ""},
		"reading the node fails": {withNode: true, fail: "read node", want: "read node"},
		"the routes fail: no firewall, no links, a report": {withNode: true, fail: "apply routes",
			want: "read node, read carried, apply routes, report"},
		"the firewall fails: the links stay as they are": {withNode: true, fail: "apply firewall",
			want: "read node, read carried, apply routes, read counters, record links, apply firewall, report"},
		"the record of the links fails: they stay as they are": {withNode: true, fail: "record links",
			want: "read node, read carried, apply routes, read counters, record links, apply firewall, report"},
		"the record was never read: the firewall, which holds it, is not written": {withNode: true, fail: "record links", unknownRecord: true,
			want: "read node, read carried, apply routes, read counters, record links, report"},
		"the kernel's choice cannot be read: pending members are unproven": {withNode: true, fail: "read carried", want: full},
		"turning the links on fails":                                       {withNode: true, fail: "turn on links", want: full},
		"the counters fail: only metrics miss them":                        {withNode: true, fail: "read counters", want: full},
		"the report fails: logged, the reconcile succeeded":                {withNode: true, fail: "report", want: full},
		"old routes in main go after ours are in": {withNode: true, mainVia: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
			want: "read node, read carried, apply routes, read counters, remove legacy routes, record links, apply firewall, turn on links, report"},
		"old routes stay if ours failed": {withNode: true, mainVia: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, fail: "apply routes",
			want: "read node, read carried, apply routes, report"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &parts{fail: map[string]error{}, mainVia: tc.mainVia, unknownRecord: tc.unknownRecord}
			if tc.fail != "" {
				p.fail[tc.fail] = boom
			}
			r := newTestReconciler(t, p, tc.withNode)
			err := r.Reconcile(context.Background())
			if got := strings.Join(p.calls, ", "); got != tc.want {
				t.Errorf("calls:\n  %s\nwant:\n  %s", got, tc.want)
			}
			// Reading the node, the routes, the firewall or the links
			// failing fails the reconcile (it is retried); the report, the
			// counters and no Node do not.
			wantErr := slices.Contains([]string{"read node", "apply routes", "apply firewall", "record links", "turn on links"}, tc.fail)
			if (err != nil) != wantErr {
				t.Errorf("Reconcile() = %v, want an error: %t", err, wantErr)
			}
			if wantErr && tc.fail != "read node" && !errors.Is(p.reported, boom) {
				t.Errorf("the report carried %v, want the failure", p.reported)
			}
		})
	}
}

// A switch is counted even when a step after it failed.
func TestReconcileCountsASwitchFollowedByAFailure(t *testing.T) {
	p := &parts{fail: map[string]error{"apply routes": errors.New("deleting unused nexthops: boom")}, applied: datapath.Applied{Swapped: true, Table: 52102}}
	r := newTestReconciler(t, p, true)
	if err := r.Reconcile(context.Background()); err == nil {
		t.Fatal("want the error")
	}
	if got := testutil.ToFloat64(r.Metrics.Swaps); got != 1 {
		t.Fatalf("swaps = %v, want 1", got)
	}
}

// fakeHealth reports its paths: down where down says so, otherwise up
// (answered), damped until a time where damped says so.
type fakeHealth struct {
	down   map[group.Path]bool
	damped map[group.Path]time.Time
}

func (f *fakeHealth) Health() map[group.Path]group.Health {
	out := map[group.Path]group.Health{}
	for p, d := range f.down {
		out[p] = group.Health{Down: d, Answered: true, DampedUntil: f.damped[p]}
	}
	return out
}
func (f *fakeHealth) Set(context.Context, []policy.Probe) {}

// A group never switches more than once per probe period: a second switch
// that health asks for within it waits, and the router asks to be woken
// when the period ends.
func TestReconcileSwitchesAGroupAtMostOncePerPeriod(t *testing.T) {
	p := &parts{fail: map[string]error{}}
	r := newTestReconciler(t, p, true)
	routes := r.Cache.Routes
	for _, o := range routes.List() {
		_ = routes.Delete(o)
	}
	var paths []group.Path
	for i, gw := range []string{"198.51.100.4", "198.51.100.5", "198.51.100.6"} {
		sr := &v1.StaticRoute{
			ObjectMeta: metav1.ObjectMeta{Name: string(rune('a' + i)), CreationTimestamp: metav1.NewTime(time.Unix(1_800_000_000+int64(i)*60, 0))},
			Spec: v1.StaticRouteSpec{Group: "egress", Destinations: []string{"192.0.2.0/24"}, Gateway: gw,
				HealthCheck: &v1.HealthCheck{Target: "192.0.2.7", PeriodMilliseconds: 200}},
		}
		if err := routes.Add(sr); err != nil {
			t.Fatal(err)
		}
		pr, _ := group.ProbeOf(sr)
		paths = append(paths, pr.Path)
	}
	h := &fakeHealth{down: map[group.Path]bool{paths[0]: false, paths[1]: false, paths[2]: false}}
	r.Health = h
	var woken []time.Duration
	r.Wake = func(d time.Duration) { woken = append(woken, d) }
	t0 := time.Unix(1_900_000_000, 0)
	at := t0
	r.now = func() time.Time { return at }
	step := func(ms int, want string, sel v1.Selection) {
		t.Helper()
		at = t0.Add(time.Duration(ms) * time.Millisecond)
		if err := r.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		g := p.desired.Groups[0]
		if g.Active != want || g.Selection != sel {
			t.Fatalf("at %d ms: %s (%s), want %s (%s)", ms, g.Active, g.Selection, want, sel)
		}
	}
	step(0, "c", v1.SelectionNewest)
	h.down[paths[2]] = true
	step(10, "b", v1.SelectionNewerDown) // c down: one switch
	h.down[paths[1]] = true
	step(60, "b", v1.SelectionHeld) // b down 50 ms later: held
	if len(woken) != 1 || woken[0] != 150*time.Millisecond {
		t.Fatalf("woken %v, want once after 150 ms", woken)
	}
	step(150, "b", v1.SelectionHeld)
	step(210, "a", v1.SelectionNewerDown) // the period is over
	h.down = map[group.Path]bool{paths[0]: false, paths[1]: false, paths[2]: false}
	step(300, "a", v1.SelectionHeld) // back up within a period: held on a
	step(410, "c", v1.SelectionNewest)
}

// A switch observes the time from the change it took up; a reconcile
// without a pending change, or without a switch, observes nothing.
func TestReconcileObservesEventToKernel(t *testing.T) {
	p := &parts{fail: map[string]error{}, applied: datapath.Applied{Swapped: true, ToSwitch: time.Millisecond}}
	r := newTestReconciler(t, p, true)
	r.Clock = &EventClock{}
	if err := r.Reconcile(context.Background()); err != nil { // no change pending
		t.Fatal(err)
	}
	r.Clock.Mark(time.Now().Add(-20 * time.Millisecond))
	r.Clock.Mark(time.Now()) // a later change: the older one counts
	if err := r.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.applied = datapath.Applied{}
	r.Clock.Mark(time.Now())
	if err := r.Reconcile(context.Background()); err != nil { // no switch
		t.Fatal(err)
	}
	var m dto.Metric
	if err := r.Metrics.EventToKernel.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n, sum := m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(); n != 1 || sum < 0.020 || sum > 1 {
		t.Fatalf("%d observations summing %.3f s, want one of about 21 ms", n, sum)
	}
	if _, pending := r.Clock.Take(); pending {
		t.Fatal("the clock still holds a change that a reconcile took up")
	}
}

// An execution trace of a reconcile has its regions, by the names the
// README gives: what an operator looks for in `go tool trace`.
func TestReconcileMarksTraceRegions(t *testing.T) {
	r := newTestReconciler(t, &parts{fail: map[string]error{}}, true)
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	err := r.Reconcile(context.Background())
	trace.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{"reconcile", "kernel apply"} {
		// A string of the trace's dictionary: its length, then itself.
		// (Function names hold "reconcile" too, in longer strings.)
		entry := append(binary.AppendUvarint(nil, uint64(len(region))), region...)
		if !bytes.Contains(buf.Bytes(), entry) {
			t.Errorf("no region %q in the execution trace of a reconcile", region)
		}
	}
}

// checkedMembers replaces r's routes with members of group "egress", one
// a minute, via gws, each probed; it returns their paths.
func checkedMembers(t *testing.T, r *Reconciler, gws ...string) []group.Path {
	t.Helper()
	routes := r.Cache.Routes
	for _, o := range routes.List() {
		_ = routes.Delete(o)
	}
	var paths []group.Path
	for i, gw := range gws {
		sr := &v1.StaticRoute{
			ObjectMeta: metav1.ObjectMeta{Name: string(rune('a' + i)), CreationTimestamp: metav1.NewTime(time.Unix(1_800_000_000+int64(i)*60, 0))},
			Spec: v1.StaticRouteSpec{Group: "egress", Destinations: []string{"192.0.2.0/24"}, Gateway: gw,
				HealthCheck: &v1.HealthCheck{Target: "192.0.2.7"}},
		}
		if err := routes.Add(sr); err != nil {
			t.Fatal(err)
		}
		pr, _ := group.ProbeOf(sr)
		paths = append(paths, pr.Path)
	}
	return paths
}

// A restarted router reads which gateway the kernel uses, once, and keeps
// it while its probes have not answered: the newer member's gateway may be
// dead. The probes then decide. A member added on an unproven gateway
// takes nothing over until its first answer.
func TestReconcileKeepsTheKernelsChoiceUntilProbesDecide(t *testing.T) {
	p := &parts{fail: map[string]error{}, carried: map[string]netip.Addr{"egress": netip.MustParseAddr("198.51.100.4")}}
	r := newTestReconciler(t, p, true)
	paths := checkedMembers(t, r, "198.51.100.4", "198.51.100.5")
	h := &fakeHealth{down: map[group.Path]bool{}}
	r.Health = h
	at := time.Unix(1_900_000_000, 0)
	r.now = func() time.Time { return at }
	step := func(what, want string, sel v1.Selection) {
		t.Helper()
		at = at.Add(time.Second) // no damper's hold between steps
		if err := r.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if g := p.desired.Groups[0]; g.Active != want || g.Selection != sel {
			t.Fatalf("%s: %s (%s), want %s (%s)", what, g.Active, g.Selection, want, sel)
		}
	}
	step("restarted, nothing answered yet", "a", v1.SelectionNewerDown)
	h.down[paths[0]] = false
	step("a answers", "a", v1.SelectionNewerDown)
	h.down[paths[1]] = true
	step("b's probes are lost", "a", v1.SelectionNewerDown)
	if n := strings.Count(strings.Join(p.calls, ","), "read carried"); n != 1 {
		t.Errorf("the kernel's choice was read %d times, want once", n)
	}
	h.down[paths[1]] = false
	step("b answers", "b", v1.SelectionNewest)

	// A third member, on a gateway nobody has probed: pending, not
	// carrying. It waits for its first answer.
	paths = checkedMembers(t, r, "198.51.100.4", "198.51.100.5", "198.51.100.6")
	step("c added", "b", v1.SelectionNewerDown)
	h.down[paths[2]] = false
	step("c answers", "c", v1.SelectionNewest)
}

// A damped gateway yields to one that is up, and the router asks to be
// woken when it is released.
func TestReconcileWakesWhenADampedGatewayIsReleased(t *testing.T) {
	p := &parts{fail: map[string]error{}}
	r := newTestReconciler(t, p, true)
	paths := checkedMembers(t, r, "198.51.100.4", "198.51.100.5")
	t0 := time.Unix(1_900_000_000, 0)
	at := t0
	r.now = func() time.Time { return at }
	var woken []time.Duration
	r.Wake = func(d time.Duration) { woken = append(woken, d) }
	r.Health = &fakeHealth{down: map[group.Path]bool{paths[0]: false, paths[1]: false}, damped: map[group.Path]time.Time{paths[1]: t0.Add(20 * time.Second)}}
	if err := r.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := p.desired.Groups[0]; g.Active != "a" || g.Selection != v1.SelectionNewerDown {
		t.Fatalf("b damped: %s (%s), want a (NewerDown)", g.Active, g.Selection)
	}
	if len(woken) != 1 || woken[0] != 20*time.Second {
		t.Fatalf("woken %v, want once after 20 s", woken)
	}
	if got := testutil.ToFloat64(r.Metrics.DampedGateways); got != 1 {
		t.Errorf("staticroute_damped_gateways = %v, want 1", got)
	}
	at = t0.Add(20 * time.Second)
	if err := r.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := p.desired.Groups[0]; g.Active != "b" {
		t.Fatalf("released: %s, want b", g.Active)
	}
}
