package validate

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// Each check is a function of its inputs: tested alone, with the paths
// and messages it gives.
func TestChecksAlone(t *testing.T) {
	gw := field.NewPath("spec", "gateway")
	dests := func(raw ...string) []destination {
		d, errs, _ := parseDestinations(field.NewPath("spec", "destinations"), raw)
		if len(errs) > 0 {
			t.Fatalf("parsing %v: %v", raw, errs)
		}
		return d
	}
	vpc := Config{VPC: []netip.Prefix{netip.MustParsePrefix("10.116.0.0/20")}}
	hcPath, gw4 := field.NewPath("spec", "healthCheck"), []netip.Addr{netip.MustParseAddr("10.116.0.4")}
	for name, tc := range map[string]struct {
		errs field.ErrorList
		want []string // substrings, one per error, in order
	}{
		"a gateway that is no address": {errs: func() field.ErrorList { _, e := checkGateway(gw, "10.116.0"); return e }(),
			want: []string{`spec.gateway: Invalid value: "10.116.0"`}},
		"an empty gateway": {errs: func() field.ErrorList { _, e := checkGateway(gw, ""); return e }(),
			want: []string{"spec.gateway: Required value: give the IPv4 address of the NAT gateway"}},
		"a loopback gateway": {errs: func() field.ErrorList { _, e := checkGateway(gw, "127.0.0.1"); return e }(),
			want: []string{"lies inside"}},
		"a gateway outside the VPC": {errs: checkGatewayInVPC(gw, vpc, netip.MustParseAddr("192.0.2.1")),
			want: []string{"is outside the VPC (10.116.0.0/20)"}},
		"the VPC's broadcast address": {errs: checkGatewayInVPC(gw, vpc, netip.MustParseAddr("10.116.15.255")),
			want: []string{"is the broadcast address of the VPC CIDR 10.116.0.0/20"}},
		"a gateway inside the VPC": {errs: checkGatewayInVPC(gw, vpc, netip.MustParseAddr("10.116.0.4"))},
		"the gateway as a destination": {errs: checkGatewayNotDestination(gw, "10.116.0.4", netip.MustParseAddr("10.116.0.4"), dests("192.0.2.7", "10.116.0.4")),
			want: []string{"must not also be a destination (spec.destinations[1])"}},
		"a duplicate and a nested destination": {errs: checkInsideRoute(dests("192.0.2.0/24", "192.0.2.7", "198.51.100.1", "198.51.100.1")),
			want: []string{"spec.destinations[1]: Invalid value: \"192.0.2.7\": lies inside 192.0.2.0/24 (spec.destinations[0])", "spec.destinations[3]: Duplicate value"}},
		"distinct destinations":                      {errs: checkInsideRoute(dests("192.0.2.0/25", "192.0.2.128/25"))},
		"a health check with defaults":               {errs: checkHealthCheck(hcPath, vpc, &v1.HealthCheck{}, gw4)},
		"a TCP check to a target beyond the gateway": {errs: checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Target: "192.0.2.7", Protocol: "TCP", Port: 443}, gw4)},
		"the gateway itself as target":               {errs: checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Target: "10.116.0.4"}, gw4)},
		"a TCP check without a port, an ICMP one with": {
			errs: append(checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Protocol: "TCP"}, gw4), checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Port: 80}, gw4)...),
			want: []string{"spec.healthCheck.port: Required value: protocol TCP connects to a port", "spec.healthCheck.port: Invalid value: 80: is for protocol TCP only"}},
		"bounds": {errs: checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Protocol: "UDP", PeriodMilliseconds: 10, TimeoutMilliseconds: 300, FailureThreshold: 101}, gw4),
			want: []string{`spec.healthCheck.protocol: Unsupported value: "UDP"`, "spec.healthCheck.periodMilliseconds: Invalid value: 10: must be from 50", "spec.healthCheck.timeoutMilliseconds: Invalid value: 300: must be from 10 to the period (10)", "spec.healthCheck.failureThreshold: Invalid value: 101"}},
		"a target inside the VPC, never reached through the gateway": {errs: checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Target: "10.116.0.9"}, gw4),
			want: []string{`spec.healthCheck.target: Invalid value: "10.116.0.9": lies inside the VPC CIDR 10.116.0.0/20: it is reached directly`}},
		"a target that is one of several gateways": {errs: checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Target: "10.116.0.5"},
			[]netip.Addr{netip.MustParseAddr("10.116.0.4"), netip.MustParseAddr("10.116.0.5")}),
			want: []string{`spec.healthCheck.target: Invalid value: "10.116.0.5": is one of spec.gateways`}},
		"two gateways, each in the VPC": {errs: func() field.ErrorList {
			_, _, e := checkGateways(field.NewPath("spec"), &v1.StaticRoute{Spec: v1.StaticRouteSpec{Gateways: []string{"10.116.0.4", "10.116.0.5"}}})
			return e
		}()},
		"both gateway and gateways": {errs: func() field.ErrorList {
			_, _, e := checkGateways(field.NewPath("spec"), &v1.StaticRoute{Spec: v1.StaticRouteSpec{Gateway: "10.116.0.4", Gateways: []string{"10.116.0.5"}}})
			return e
		}(), want: []string{`spec.gateway: Invalid value: "10.116.0.4": give either spec.gateway`}},
		"gateways: a duplicate, a bad entry, too many": {errs: func() field.ErrorList {
			_, _, e := checkGateways(field.NewPath("spec"), &v1.StaticRoute{Spec: v1.StaticRouteSpec{Gateways: []string{
				"10.116.0.4", "10.116.0.4", "10.116.0", "10.116.0.6", "10.116.0.7", "10.116.0.8", "10.116.0.9", "10.116.0.10", "10.116.0.11"}}})
			return e
		}(), want: []string{"spec.gateways: Too many: 9: must have at most 8 items", `spec.gateways[1]: Duplicate value: "10.116.0.4"`, `spec.gateways[2]: Invalid value: "10.116.0"`}},
		"a drain of more than a day": {errs: checkDrain(field.NewPath("spec", "drainSeconds"), 86401),
			want: []string{"spec.drainSeconds: Invalid value: 86401: must be from 0"}},
		"a drain of a minute": {errs: checkDrain(field.NewPath("spec", "drainSeconds"), 60)},
		"a loopback target": {errs: checkHealthCheck(hcPath, vpc, &v1.HealthCheck{Target: "127.0.0.1"}, gw4),
			want: []string{`spec.healthCheck.target: Invalid value: "127.0.0.1": lies inside loopback`}},
		"a group that is no name": {errs: checkGroup(field.NewPath("spec", "group"), "Primary_1"),
			want: []string{"spec.group: Invalid value: \"Primary_1\""}},
	} {
		t.Run(name, func(t *testing.T) {
			if len(tc.errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d", tc.errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(tc.errs[i].Error(), w) {
					t.Errorf("error %d: %q lacks %q", i, tc.errs[i].Error(), w)
				}
			}
		})
	}
}
