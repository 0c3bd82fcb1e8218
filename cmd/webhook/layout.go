package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/internal/webhook"
	"github.com/staticroute/staticroute/pkg/validate"
)

// watchLayout is admission's layout: what the layout file sets, and for
// what it leaves out, informers on what the cluster knows (run by mgr).
// Once they have listed, a range that is neither set nor discovered stops
// the webhook with an error naming the setting. The VPC alone may come
// later: the node routers report it, and they need no webhook to start.
// It returns the layout and a readiness check: its informers have listed.
func watchLayout(mgr manager.Manager, kc *kube.Client, conn *kube.Connection, set validate.Config, log logr.Logger) (*webhook.Discovery, healthz.Checker, error) {
	d := webhook.NewDiscovery(set)
	var informers []*kube.Informer
	add := func(store *cache.Store, watch func(*kube.Client, *kube.Connection, cache.ResourceEventHandler) (*kube.Informer, error)) error {
		inf, err := watch(kc, conn, d.Feed())
		if err != nil {
			return err
		}
		*store = inf.GetStore()
		informers = append(informers, inf)
		return nil
	}
	if len(set.Service) == 0 {
		if err := add(&d.ServiceCIDRs, kube.WatchServiceCIDRs); err != nil {
			return nil, nil, fmt.Errorf("watching ServiceCIDRs: %w", err)
		}
	}
	if len(set.Pod) == 0 || len(set.VPC) == 0 {
		if err := add(&d.Nodes, kube.WatchPodCIDRs); err != nil {
			return nil, nil, fmt.Errorf("watching Nodes: %w", err)
		}
	}
	if len(set.VPC) == 0 {
		if err := add(&d.NodeStates, kube.WatchReportedVPCs); err != nil {
			return nil, nil, fmt.Errorf("watching StaticRouteNodeStates: %w", err)
		}
	}
	synced := func() bool {
		for _, inf := range informers {
			if !inf.HasSynced() {
				return false
			}
		}
		return true
	}
	for _, inf := range informers {
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { inf.Run(ctx); return nil })); err != nil {
			return nil, nil, err
		}
	}
	check := manager.RunnableFunc(func(ctx context.Context) error {
		if !cache.WaitForCacheSync(ctx.Done(), synced) {
			return nil // stopped before the first lists
		}
		if err := d.CheckRanges(); err != nil {
			return err
		}
		c, err := d.Config()
		log.Info("layout", "vpc", c.VPC, "pod", c.Pod, "service", c.Service, "vpcUnknownYet", err)
		return nil
	})
	ready := func(*http.Request) error {
		if !synced() {
			return errors.New("the ServiceCIDRs, Nodes or node states the layout is discovered from are not loaded yet")
		}
		return nil
	}
	return d, ready, mgr.Add(check)
}
