package main

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/go-logr/logr"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/internal/router"
	"github.com/staticroute/staticroute/pkg/validate"
)

// watch makes the router's informers: every StaticRoute, this node's
// Node only, and the default/kubernetes EndpointSlices only, so that watch
// traffic stays linear in the number of nodes (unless watchLayout must
// watch every Node: see there). Changes that matter poke: a route's spec
// or deletion (its generation), the node's labels, any change of the API
// server's endpoints. Status writes (the summarizer's, the kubelet's) do
// not, and no status is kept: a Node's lists its images.
func watch(kc *kube.Client, cfg router.Config, log logr.Logger, poke func()) (router.Cache, []*kube.Informer, error) {
	nodeName := cfg.NodeName
	conn := kube.NewConnection(log)
	routes, err := kube.NewInformer(kube.Watch{
		Client: kc.Routes, Resource: "staticroutes", Example: &v1.StaticRoute{}, Conn: conn,
		Transform: kube.Strip(func(sr *v1.StaticRoute) { sr.Status = v1.StaticRouteStatus{} }),
	}, onChange(log.WithValues("kind", "StaticRoute"), func(a, b metav1.Object) bool { return a.GetGeneration() != b.GetGeneration() }, poke))
	if err != nil {
		return router.Cache{}, nil, err
	}
	node, err := kube.NewInformer(kube.Watch{
		Client: kc.Core, Resource: "nodes", Example: &corev1.Node{}, Conn: conn,
		Select: func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", nodeName).String()
		},
		Transform: kube.Strip(func(n *corev1.Node) { n.Status = corev1.NodeStatus{} }),
	}, onChange(log.WithValues("kind", "Node"), func(a, b metav1.Object) bool { return !maps.Equal(a.GetLabels(), b.GetLabels()) }, poke))
	if err != nil {
		return router.Cache{}, nil, err
	}
	endpoints, err := kube.NewInformer(kube.Watch{
		Client: kc.Discovery, Resource: "endpointslices", Namespace: metav1.NamespaceDefault, Example: &discoveryv1.EndpointSlice{}, Conn: conn,
		Select: func(o *metav1.ListOptions) {
			o.LabelSelector = labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: "kubernetes"}).String()
		},
		Transform: kube.Strip[*discoveryv1.EndpointSlice](nil),
	}, onChange(log.WithValues("kind", "EndpointSlice"), func(metav1.Object, metav1.Object) bool { return true }, poke))
	if err != nil {
		return router.Cache{}, nil, err
	}
	c := router.Cache{Routes: routes.GetStore(), Node: node.GetStore(), Slices: endpoints.GetStore()}
	informers := []*kube.Informer{routes, node, endpoints}
	layout, err := watchLayout(kc, cfg, conn, log, poke, &c)
	return c, append(informers, layout...), err
}

// watchLayout watches what the cluster says of the ranges the layout
// leaves out: every Node's podCIDRs (a change of them pokes), the
// ServiceCIDRs (any change pokes). A set range is not watched. Every Node
// is what flannel and Calico watch too; the API server still sends each
// router every Node's status updates (one per node each few minutes),
// which setting podCIDRs in the layout spares.
func watchLayout(kc *kube.Client, cfg router.Config, conn *kube.Connection, log logr.Logger, poke func(), c *router.Cache) ([]*kube.Informer, error) {
	var out []*kube.Informer
	var nodes, services cache.Store
	ranges := kube.NewCached(func() validate.Discovered { return kube.Discover(nodes, services) })
	changed := func() { ranges.Changed(); poke() }
	if len(cfg.Cluster.Pod) == 0 {
		podCIDRs := func(o metav1.Object) []string {
			if n, ok := o.(*corev1.Node); ok {
				return n.Spec.PodCIDRs
			}
			return nil
		}
		inf, err := kube.WatchPodCIDRs(kc, conn, onChange(log.WithValues("kind", "Node", "for", "podCIDRs"), func(a, b metav1.Object) bool { return !slices.Equal(podCIDRs(a), podCIDRs(b)) }, changed))
		if err != nil {
			return nil, err
		}
		nodes = inf.GetStore()
		out = append(out, inf)
	}
	if len(cfg.Cluster.Service) == 0 {
		inf, err := kube.WatchServiceCIDRs(kc, conn, onChange(log.WithValues("kind", "ServiceCIDR"), func(metav1.Object, metav1.Object) bool { return true }, changed))
		if err != nil {
			return nil, err
		}
		services = inf.GetStore()
		out = append(out, inf)
	}
	if len(out) > 0 {
		c.Ranges = ranges
	}
	return out, nil
}

// onChange pokes on every add and delete, and on updates that changed says
// matter. At -v=1 it logs each poke, so that a slow reaction can be told
// apart from a late event.
func onChange(log logr.Logger, changed func(old, new metav1.Object) bool, poke func()) cache.ResourceEventHandler {
	log = log.V(1)
	pokeFor := func(op string, obj any) {
		if log.Enabled() {
			if o, ok := obj.(metav1.Object); ok {
				log.Info("event", "op", op, "name", o.GetName(), "resourceVersion", o.GetResourceVersion())
			}
		}
		poke()
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { pokeFor("add", obj) },
		UpdateFunc: func(old, new any) {
			a, okA := old.(metav1.Object)
			b, okB := new.(metav1.Object)
			if !okA || !okB || changed(a, b) {
				pokeFor("update", new)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			pokeFor("delete", obj)
		},
	}
}
