package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/test/framework"
)

// BenchmarkNodeStateWatch is the summarizer's watch of every node state
// through failovers' bursts of node-state writes, without the rest of a
// cluster (BenchmarkFailoverConvergence has it all, and takes minutes at
// 400 nodes): how long after its write returned each event arrived, and
// whether the API server closed the watch as too slow (issue 14: "no
// watch dropped at 400 nodes"). The watch starts before the first write,
// as the summarizer's does, so the API server sizes its queue for an
// empty history (10 events). Then 10 bursts like a mass failover's: 400
// node states written at once, each with its node's router's token on a
// connection of its own, through the priority level and the admission
// policy the routers go through, on two cores shared with two processes
// that spin (as hundreds of routers would).
func BenchmarkNodeStateWatch(b *testing.B) {
	cp := framework.StartControlPlane(b)
	_, ca := framework.NewWebhookCerts(b)
	cp.Install(b, ca)
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	newClient := func(cfg *rest.Config) client.WithWatch {
		cl, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
		if err != nil {
			b.Fatal(err)
		}
		return cl
	}
	// Each node's state written with its own router's credentials, on a
	// connection of its own, as the routers do: through the priority level
	// and the admission policy the routers go through.
	const nodes, bursts, burners = 400, 10, 2
	writers := make([]client.WithWatch, nodes)
	for i := range writers {
		wcfg := rest.AnonymousClientConfig(cp.Config)
		wcfg.BearerToken = framework.RouterToken(b, cp, fmt.Sprintf("node-%d", i))
		wcfg.QPS, wcfg.Burst = 1e6, 1e6
		writers[i] = newClient(wcfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	written := map[string]time.Time{} // resourceVersion → when its write returned
	arrived := map[string]time.Time{} // resourceVersion → when the watch had it
	var closed []time.Time
	var done sync.WaitGroup
	cl := newClient(kube.Uncompressed(cp.Config)) // as the webhook's
	var list v1.StaticRouteNodeStateList
	if err := cl.List(ctx, &list); err != nil {
		b.Fatal(err)
	}
	rv := list.ResourceVersion
	done.Go(func() {
		for ctx.Err() == nil {
			wi, err := cl.Watch(ctx, &v1.StaticRouteNodeStateList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for e := range wi.ResultChan() {
				if e.Type == watch.Error { // too old to resume from: from now on
					var list v1.StaticRouteNodeStateList
					if err := cl.List(ctx, &list); err == nil {
						rv = list.ResourceVersion
					}
					continue
				}
				if o, ok := e.Object.(*v1.StaticRouteNodeState); ok {
					now := time.Now()
					mu.Lock()
					arrived[o.ResourceVersion] = now
					mu.Unlock()
					rv = o.ResourceVersion
				}
			}
			if ctx.Err() == nil { // closed by the API server: watch again from the last event
				mu.Lock()
				closed = append(closed, time.Now())
				mu.Unlock()
			}
		}
	})
	// The cores are shared, as with hundreds of routers on them: processes
	// that only spin, as many as cores.
	for range burners {
		spin := exec.Command("sh", "-c", "while :; do :; done")
		if err := spin.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { spin.Process.Kill(); spin.Wait() })
	}
	apiserver := childPid(b, "kube-apiserver")
	cpu, start := processCPU(b, apiserver), time.Now()
	for burst := range bursts {
		var wg sync.WaitGroup
		for i, writer := range writers {
			wg.Go(func() {
				st := benchNodeState(i, burst)
				// As the router's writer: tried again after a refusal.
				for try := 0; ; try++ {
					err := writer.Apply(ctx, applyConfig(b, st), client.FieldOwner("staticroute-node-router"), client.ForceOwnership)
					if err == nil {
						break
					}
					if try == 5 {
						b.Errorf("writing node-%d: %v", i, err)
						return
					}
					time.Sleep(time.Second)
				}
				now := time.Now()
				mu.Lock()
				written[st.ResourceVersion] = now
				mu.Unlock()
			})
		}
		wg.Wait()
		time.Sleep(2 * time.Second) // between failovers
	}
	took, used := time.Since(start), processCPU(b, apiserver)-cpu
	time.Sleep(2 * time.Second) // the last events
	cancel()
	done.Wait()
	b.Logf("%d bursts of %d node-state writes in %v; the API server's CPU %.1f s (%.0f%% of its two cores)",
		bursts, nodes, took.Round(time.Millisecond), used.Seconds(), 100*used.Seconds()/took.Seconds()/2)
	mu.Lock()
	defer mu.Unlock()
	var lags []time.Duration
	missing := 0
	for rv, at := range written {
		if got, ok := arrived[rv]; ok {
			lags = append(lags, max(0, got.Sub(at)))
		} else {
			missing++
		}
	}
	p50, p99, mx := quantiles(lags)
	b.Logf("the watch: closed by the API server %d times; write → event p50 %v, p99 %v, max %v; %d of %d events not seen",
		len(closed), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), mx.Round(10*time.Microsecond), missing, len(written))
	b.ReportMetric(float64(len(closed)), "closed")
	b.ReportMetric(float64(p99.Microseconds())/1000, "write-to-event-p99-ms")
}
