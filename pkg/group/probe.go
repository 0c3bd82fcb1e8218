package group

import (
	"fmt"
	"net/netip"
	"time"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// Path is what a probe tests: reaching Target through Gateway with
// Protocol. A node keeps one health per path: members that share it share
// their gateway's health, and tuning a check (its period, thresholds)
// keeps what is known.
type Path struct {
	Gateway  netip.Addr
	Target   netip.Addr // the gateway itself unless the check names another
	Protocol string     // v1.ProbeICMP or v1.ProbeTCP
	Port     uint16     // TCP only
}

func (p Path) String() string {
	if p.Protocol == v1.ProbeTCP {
		return fmt.Sprintf("tcp %s:%d via %s", p.Target, p.Port, p.Gateway)
	}
	return fmt.Sprintf("icmp %s via %s", p.Target, p.Gateway)
}

// Probe is what a node probes for a member: the path, and the member's
// health check with the defaults filled in.
type Probe struct {
	Path
	Period  time.Duration
	Timeout time.Duration
	// FailureThreshold probes lost in a row take the gateway down;
	// SuccessThreshold answered in a row bring it up.
	FailureThreshold, SuccessThreshold int
}

// ProbesOf are sr's probes, one per gateway (spec.gateway, or each of
// spec.gateways, in order); nil if sr has no health check. A gateway or
// target that does not parse (the webhook refuses both) gives no probe:
// ok[i] says whether gateway i has one (one without counts as up, as a
// member without a check).
func ProbesOf(sr *v1.StaticRoute) (ps []Probe, ok []bool) {
	if sr.Spec.HealthCheck == nil {
		return nil, nil
	}
	for _, s := range sr.GatewayList() {
		p, valid := probeVia(sr.Spec.HealthCheck, s)
		ps, ok = append(ps, p), append(ok, valid)
	}
	return ps, ok
}

// ProbeOf is the probe of sr's first gateway (ProbesOf).
func ProbeOf(sr *v1.StaticRoute) (Probe, bool) {
	ps, ok := ProbesOf(sr)
	if len(ps) == 0 {
		return Probe{}, false
	}
	return ps[0], ok[0]
}

func probeVia(hc *v1.HealthCheck, gateway string) (Probe, bool) {
	gw, err := netip.ParseAddr(gateway)
	if err != nil || !gw.Is4() {
		return Probe{}, false
	}
	p := Probe{
		Path:             Path{Gateway: gw, Target: gw, Protocol: hc.Protocol, Port: uint16(hc.Port)},
		Period:           time.Duration(orDefault(hc.PeriodMilliseconds, v1.DefaultProbePeriodMilliseconds)) * time.Millisecond,
		FailureThreshold: int(orDefault(hc.FailureThreshold, v1.DefaultProbeThreshold)),
		SuccessThreshold: int(orDefault(hc.SuccessThreshold, v1.DefaultProbeThreshold)),
	}
	if hc.Target != "" {
		if p.Target, err = netip.ParseAddr(hc.Target); err != nil || !p.Target.Is4() {
			return Probe{}, false
		}
	}
	if p.Protocol == "" {
		p.Protocol = v1.ProbeICMP
	}
	if p.Protocol != v1.ProbeTCP {
		p.Protocol, p.Port = v1.ProbeICMP, 0
	}
	p.Period = max(p.Period, v1.MinProbePeriodMilliseconds*time.Millisecond)
	// Half the period by default: a VPC's round trip is well under a
	// millisecond, and a lost probe counted half a period sooner takes
	// that much off every detection (threshold periods and the phase).
	p.Timeout = min(time.Duration(hc.TimeoutMilliseconds)*time.Millisecond, p.Period)
	if p.Timeout <= 0 {
		p.Timeout = p.Period / 2
	}
	return p, true
}

func orDefault(v, d int32) int32 {
	if v <= 0 {
		return d
	}
	return v
}

func (p Probe) String() string {
	return fmt.Sprintf("%s every %s (timeout %s, down after %d lost, up after %d answered)", p.Path, p.Period, p.Timeout, p.FailureThreshold, p.SuccessThreshold)
}
