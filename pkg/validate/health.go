package validate

import (
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// checkHealthCheck checks spec.healthCheck: the shapes and bounds the
// CRD's schema checks too (for objects that bypassed it, and for clear
// messages), and what only the cluster's layout tells: a target inside
// the VPC (other than the gateway) or the cluster's ranges is never
// reached through a gateway, so its probes would say nothing of it.
func checkHealthCheck(path *field.Path, cfg Config, hc *v1.HealthCheck, gws []netip.Addr) field.ErrorList {
	if hc == nil {
		return nil
	}
	var errs field.ErrorList
	switch hc.Protocol {
	case "", v1.ProbeICMP:
		if hc.Port != 0 {
			errs = append(errs, field.Invalid(path.Child("port"), hc.Port, "is for protocol TCP only: remove it, or set protocol: TCP"))
		}
	case v1.ProbeTCP:
		if hc.Port < 1 || hc.Port > 65535 {
			errs = append(errs, field.Required(path.Child("port"), "protocol TCP connects to a port: give one from 1 to 65535, where the target listens"))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("protocol"), hc.Protocol, []string{v1.ProbeICMP, v1.ProbeTCP}))
	}
	period := hc.PeriodMilliseconds
	if period == 0 {
		period = v1.DefaultProbePeriodMilliseconds
	}
	if period < v1.MinProbePeriodMilliseconds || period > 60000 {
		errs = append(errs, field.Invalid(path.Child("periodMilliseconds"), hc.PeriodMilliseconds,
			fmt.Sprintf("must be from %d to 60000: every node sends a probe per period to every gateway", v1.MinProbePeriodMilliseconds)))
	}
	if t := hc.TimeoutMilliseconds; t != 0 && (t < 10 || t > period) {
		errs = append(errs, field.Invalid(path.Child("timeoutMilliseconds"), t,
			fmt.Sprintf("must be from 10 to the period (%d): a probe is answered or lost before the next one goes", period)))
	}
	for _, t := range []struct {
		name string
		v    int32
	}{{"failureThreshold", hc.FailureThreshold}, {"successThreshold", hc.SuccessThreshold}} {
		if t.v < 0 || t.v > 100 {
			errs = append(errs, field.Invalid(path.Child(t.name), t.v, "must be from 1 to 100 probes in a row (empty: 3)"))
		}
	}
	return append(errs, checkProbeTarget(path.Child("target"), cfg, hc.Target, gws)...)
}

// checkProbeTarget checks a health check's target: an IPv4 address
// reached through the gateways (not one of several, not inside the
// cluster's ranges); empty is each gateway itself.
func checkProbeTarget(tp *field.Path, cfg Config, target string, gws []netip.Addr) (errs field.ErrorList) {
	if target == "" {
		return nil
	}
	addr, err := ParseIPv4(target)
	if err != nil {
		return append(errs, field.Invalid(tp, target, err.Error()))
	}
	if name, in := insideSpecial(netip.PrefixFrom(addr, 32)); in {
		return append(errs, field.Invalid(tp, target, "lies inside "+name+": it is never reached through a gateway"))
	}
	switch {
	case len(gws) == 1 && addr == gws[0]:
		return errs
	case slices.Contains(gws, addr):
		return append(errs, field.Invalid(tp, target,
			"is one of spec.gateways: every gateway is probed through itself, so this would probe it through the others; leave target empty to probe each gateway itself, or give an address beyond them"))
	}
	for _, r := range cfg.Ranges() {
		if r.Prefix.Contains(addr) {
			errs = append(errs, field.Invalid(tp, target, fmt.Sprintf(
				"lies inside %s: it is reached directly, never through the gateway, so its probes would not test the gateway; probe an address beyond the gateway (or leave target empty to probe the gateway itself)", r.What)))
			break
		}
	}
	return errs
}
