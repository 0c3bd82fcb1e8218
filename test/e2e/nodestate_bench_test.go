package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	state := func(i, round int) *v1.StaticRouteNodeState {
		gw := []string{"198.51.100.4", "198.51.100.12"}[round%2]
		return &v1.StaticRouteNodeState{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "StaticRouteNodeState"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i)},
			Status: v1.StaticRouteNodeStateStatus{GroupCount: 1, AppliedCount: 1, Groups: []v1.NodeGroupState{{
				Group: "primary", ActiveMember: fmt.Sprintf("member-%d", round), Gateway: gw,
				Prefixes: []string{"192.0.2.7/32"}, State: v1.NodeGroupApplied, Selection: "Newest",
			}}},
		}
	}
	for i := range nodes {
		if err := cl.Patch(ctx, state(i, 0), client.Apply, client.FieldOwner("staticroute-node-router"), client.ForceOwnership); err != nil {
			b.Fatal(err)
		}
	}
	cost := map[string]time.Duration{}
	took := map[string]time.Duration{}
	for round := 1; round <= 2*rounds; round++ {
		way := []string{"server-side apply", "merge patch"}[round%2]
		cpu, start := processCPU(b, apiserver), time.Now()
		for i := range nodes {
			s := state(i, round)
			var err error
			if way == "merge patch" {
				// The whole state as a JSON merge patch: no
				// resourceVersion (custom resources refuse an update
				// without one), no managed-fields merge.
				body, jerr := json.Marshal(map[string]any{"status": s.Status})
				if jerr != nil {
					b.Fatal(jerr)
				}
				err = cl.Patch(ctx, s, client.RawPatch(types.MergePatchType, body), client.FieldOwner("staticroute-node-router"))
			} else {
				err = cl.Patch(ctx, s, client.Apply, client.FieldOwner("staticroute-node-router"), client.ForceOwnership)
			}
			if err != nil {
				b.Fatalf("%s: %v", way, err)
			}
		}
		took[way] += time.Since(start)
		cost[way] += processCPU(b, apiserver) - cpu
	}
	for _, way := range []string{"server-side apply", "merge patch"} {
		per := cost[way] / (nodes * rounds)
		b.Logf("%s: the API server's CPU per node-state write %v, %d writes in %v", way, per, nodes*rounds, took[way].Round(time.Millisecond))
		b.ReportMetric(float64(per.Microseconds()), map[string]string{"server-side apply": "apply-us/write", "merge patch": "merge-patch-us/write"}[way])
	}
}
