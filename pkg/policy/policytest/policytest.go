// Package policytest builds the StaticRoutes and inputs that the tests of
// policy and datapath compute from: the test world of the tutorial, as a
// node sees it.
package policytest

import (
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

// T0 is when the test routes' ages count from.
var T0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Route is a StaticRoute named name in group (empty: its own) via gw,
// created age after T0.
func Route(name, group, gw string, age time.Duration, dests ...string) *v1.StaticRoute {
	return &v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(T0.Add(age))},
		Spec:       v1.StaticRouteSpec{Destinations: dests, Gateway: gw, Group: group},
	}
}

// WithCheck gives sr a health check probing target (empty: the gateway).
func WithCheck(sr *v1.StaticRoute, target string) *v1.StaticRoute {
	sr.Spec.HealthCheck = &v1.HealthCheck{Target: target}
	return sr
}

// Input is routes as a node of the test world sees them: VPC
// 198.51.100.0/24 (the node 198.51.100.10 on vpc0), public side
// 203.0.113.0/26, pods 198.18.64.0/18, services 198.18.128.0/18, API
// server 203.0.113.5.
func Input(routes ...*v1.StaticRoute) policy.Input {
	return policy.Input{
		Routes: routes,
		Node: policy.Node{
			Labels:    map[string]string{"pool": "egress"},
			VPCLink:   "vpc0",
			VPCAddr:   netip.MustParseAddr("198.51.100.10"),
			OnLink:    []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Connected: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/26")},
		},
		Cluster: validate.Config{
			VPC:        []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Pod:        []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18")},
			Service:    []netip.Prefix{netip.MustParsePrefix("198.18.128.0/18")},
			APIServers: []netip.Addr{netip.MustParseAddr("203.0.113.5")},
		},
	}
}

// Gateways is a StaticRoute like Route's over several gateways
// (spec.gateways).
func Gateways(name, group string, gws []string, age time.Duration, dests ...string) *v1.StaticRoute {
	sr := Route(name, group, "", age, dests...)
	sr.Spec.Gateways = gws
	return sr
}

// WithHealth is in with the probed gateways of its routes, in the routes'
// order and each route's gateways' order, in the states states' letters
// give: U up, D down, P pending, d damped.
func WithHealth(in policy.Input, states string) policy.Input {
	in.Health = map[group.Path]group.State{}
	i := 0
	for _, r := range in.Routes {
		ps, _ := group.ProbesOf(r)
		for _, p := range ps {
			in.Health[p.Path] = map[byte]group.State{'U': group.Up, 'D': group.Down, 'P': group.Pending, 'd': group.Damped}[states[i]]
			i++
		}
	}
	return in
}
