package kube

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// Client holds one REST client per API group the router uses, sharing one
// HTTP client (one connection pool, one TLS session).
type Client struct {
	Scheme    *runtime.Scheme
	Core      rest.Interface // core/v1: Nodes
	Discovery rest.Interface // discovery.k8s.io/v1: the API server's EndpointSlice
	Events    rest.Interface // events.k8s.io/v1
	Network   rest.Interface // networking.k8s.io/v1: ServiceCIDRs
	Routes    rest.Interface // networking.digitalocean.com/v1: StaticRoutes, node states
}

// NewClient builds the REST clients for cfg.
func NewClient(cfg *rest.Config) (*Client, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	cfg = Uncompressed(cfg)
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("HTTP client for %s: %w", cfg.Host, err)
	}
	codecs := serializer.NewCodecFactory(scheme)
	c := &Client{Scheme: scheme}
	for _, g := range []struct {
		into    *rest.Interface
		gv      schema.GroupVersion
		apiPath string
	}{
		{&c.Core, corev1.SchemeGroupVersion, "/api"},
		{&c.Discovery, discoveryv1.SchemeGroupVersion, "/apis"},
		{&c.Events, eventsv1.SchemeGroupVersion, "/apis"},
		{&c.Network, networkingv1.SchemeGroupVersion, "/apis"},
		{&c.Routes, v1.GroupVersion, "/apis"},
	} {
		gc := rest.CopyConfig(cfg)
		gc.GroupVersion, gc.APIPath = &g.gv, g.apiPath
		gc.NegotiatedSerializer = codecs.WithoutConversion()
		gc.ContentType = runtime.ContentTypeJSON
		rc, err := rest.RESTClientForConfigAndClient(gc, httpClient)
		if err != nil {
			return nil, fmt.Errorf("REST client for %s: %w", g.gv, err)
		}
		*g.into = rc
	}
	return c, nil
}

// ApplyNodeState writes obj by server-side apply as fieldManager, taking
// over any field another manager holds.
func (c *Client) ApplyNodeState(ctx context.Context, obj *v1.StaticRouteNodeState, fieldManager string) error {
	obj.TypeMeta = metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "StaticRouteNodeState"}
	body, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding StaticRouteNodeState %s: %w", obj.Name, err)
	}
	err = c.Routes.Patch(types.ApplyPatchType).Resource("staticroutenodestates").Name(obj.Name).
		Param("fieldManager", fieldManager).Param("force", "true").
		Body(body).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("applying StaticRouteNodeState %s: %w", obj.Name, err)
	}
	return nil
}
