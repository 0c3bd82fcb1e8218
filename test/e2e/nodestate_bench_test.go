package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/test/framework"
)

// BenchmarkNodeStateWrites measures what one node-state write costs the
// API server (its process's CPU time), by server-side apply as the router
// writes them, beside a JSON merge patch of the same object, in one run: 400
// node states, each written 5 times by each way, ways alternating. A
// merge patch cannot create, which the router would then have to. It is
// the API server's work per node and failover at scale (issue 14: the
// watch it then has no time to serve).
func BenchmarkNodeStateWrites(b *testing.B) {
	cp := framework.StartControlPlane(b)
	_, ca := framework.NewWebhookCerts(b)
	cp.Install(b, ca)
	cl := cp.Client(b)
	ctx := context.Background()
	apiserver := childPid(b, "kube-apiserver")
	const nodes, rounds = 400, 5
	apply := func(s *v1.StaticRouteNodeState) error {
		return cl.Apply(ctx, applyConfig(b, s), client.FieldOwner("staticroute-node-router"), client.ForceOwnership)
	}
	for i := range nodes { // created, as the router does, by apply
		if err := apply(benchNodeState(i, 0)); err != nil {
			b.Fatal(err)
		}
	}
	// The whole status as a JSON merge patch (an update would need the
	// resourceVersion: custom resources refuse one without it).
	mergePatch := func(s *v1.StaticRouteNodeState) error {
		body, err := json.Marshal(map[string]any{"status": s.Status})
		if err != nil {
			return err
		}
		return cl.Patch(ctx, s, client.RawPatch(types.MergePatchType, body), client.FieldOwner("staticroute-node-router"))
	}
	ways := []struct {
		name, unit string
		write      func(*v1.StaticRouteNodeState) error
		cost, took time.Duration
	}{{"server-side apply", "apply-us/write", apply, 0, 0}, {"merge patch", "merge-patch-us/write", mergePatch, 0, 0}}
	if dir := os.Getenv("PROFILE_DIR"); dir != "" {
		// Where the API server's time goes: a CPU profile over the
		// first rounds (both ways).
		go saveAPIServerProfile(b, cp, filepath.Join(dir, "nodestate-writes-apiserver-cpu.pprof"), 10*time.Second)
	}
	for round := 1; round <= 2*rounds; round++ {
		way := &ways[round%2]
		cpu, start := processCPU(b, apiserver), time.Now()
		for i := range nodes {
			if err := way.write(benchNodeState(i, round)); err != nil {
				b.Fatalf("%s: %v", way.name, err)
			}
		}
		way.took += time.Since(start)
		way.cost += processCPU(b, apiserver) - cpu
	}
	for _, way := range ways {
		per := way.cost / (nodes * rounds)
		b.Logf("%s: the API server's CPU per node-state write %v, %d writes in %v", way.name, per, nodes*rounds, way.took.Round(time.Millisecond))
		b.ReportMetric(float64(per.Microseconds()), way.unit)
	}
}

// saveAPIServerProfile writes a CPU profile of cp's API server over the
// next d to path (go tool pprof reads it).
func saveAPIServerProfile(b *testing.B, cp *framework.ControlPlane, path string, d time.Duration) {
	body, err := cp.Clientset(b).Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + time.Minute).DoRaw(context.Background())
	if err != nil {
		b.Logf("the API server's profile: %v", err)
		return
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		b.Logf("the API server's profile: %v", err)
	}
}

// benchNodeState is node i's state as its router writes it after failover
// round: one group, its member and gateway changing with the round.
func benchNodeState(i, round int) *v1.StaticRouteNodeState {
	return &v1.StaticRouteNodeState{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "StaticRouteNodeState"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i)},
		Status: v1.StaticRouteNodeStateStatus{GroupCount: 1, AppliedCount: 1, Groups: []v1.NodeGroupState{{
			Group: "primary", ActiveMember: fmt.Sprintf("member-%d", round), Gateway: []string{"198.51.100.4", "198.51.100.12"}[round%2],
			Prefixes: []string{"192.0.2.7/32"}, State: v1.NodeGroupApplied, Selection: "Newest",
		}}},
	}
}

// applyConfig is obj as a server-side apply configuration (the router
// applies its node state so; controller-runtime takes apply
// configurations, and our kinds have no generated ones).
func applyConfig(b *testing.B, obj runtime.Object) runtime.ApplyConfiguration {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		b.Fatal(err)
	}
	return client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: m})
}
