package summary

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease names the summarizer's Lease and this replica's identity in it.
type Lease struct {
	Namespace, Name, Identity string
}

// The usual Kubernetes timings: a leader that cannot renew for 10 s stops;
// another takes over 15 s after the last renewal.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// RunElected calls run while this replica holds the lease, and campaigns
// again each time it loses it, until ctx ends. Losing the lease (the API
// server away for longer than the renew deadline) stops run and nothing
// else: the replica goes on admitting from its cache. controller-runtime's
// manager exits the process instead, which took admission down with the
// summarizer on every replica at once.
func RunElected(ctx context.Context, cfg *rest.Config, l Lease, log logr.Logger, run func(context.Context)) error {
	cl, err := coordinationv1.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: l.Namespace, Name: l.Name},
		Client:     cl,
		LockConfig: resourcelock.ResourceLockConfig{Identity: l.Identity},
	}
	for ctx.Err() == nil {
		done := make(chan struct{})
		var leading atomic.Bool
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: l.Name,
			LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					leading.Store(true)
					defer close(done)
					log.Info("holding the lease: summarizing", "lease", l.Namespace+"/"+l.Name)
					run(ctx)
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		le.Run(ctx)
		// Run returns when the lease is lost (or ctx ended); the
		// summarizer's context is cancelled, wait until it has stopped
		// before campaigning again, so that two never run at once here.
		if !leading.Load() {
			continue // never led: ctx ended while campaigning
		}
		<-done
		if ctx.Err() == nil {
			log.Info("lost the summarizer's lease: summarizing stops, admission goes on; campaigning again", "lease", l.Namespace+"/"+l.Name)
		}
	}
	return nil
}
