package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/staticroute/staticroute/internal/router"
	"github.com/staticroute/staticroute/pkg/group"
	"github.com/staticroute/staticroute/pkg/policy"
	"github.com/staticroute/staticroute/pkg/validate"
)

type options struct {
	nodeName, nodeIP, vpcLink                    string
	layout, vpc, pod, service, apiServers, never string
	podLinks, tables, mark                       string
	priority, markPriority, protocol             int
	probePriority, probeTableBase                int
	lanePriority, laneTableBase                  int
	resync                                       time.Duration
	cleanup, adoptLegacy                         bool
	metricsAddr, probeAddr, pprofAddr            string
	kubeconfig                                   string
	verbosity                                    int
	damping                                      group.Damping
}

// parseFlags reads the command line into options; showVersion: -version
// was given.
func parseFlags(fs *flag.FlagSet, args []string) (o options, showVersion bool, err error) {
	def := policy.DefaultOptions()
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	fs.StringVar(&o.nodeIP, "node-ip", os.Getenv("NODE_IP"), "this node's address, its InternalIP (default $NODE_IP, the downward API's status.hostIP): when the layout sets no VPC, the VPC is this address's prefix on its link")
	fs.StringVar(&o.vpcLink, "vpc-link", "", "the VPC interface (default: the one holding an address inside --vpc-cidr, or else --node-ip)")
	fs.StringVar(&o.layout, "layout", "", "the cluster's layout file (layout.yaml of the ConfigMap staticroute-layout, mounted): vpcCIDRs, podCIDRs, serviceCIDRs, apiServerAddresses; a flag below that is given overrides its field")
	fs.StringVar(&o.vpc, "vpc-cidr", "", "comma-separated VPC CIDRs: never steered; gateways lie in them (not given here or in --layout: the prefix of --node-ip on its link)")
	fs.StringVar(&o.pod, "pod-cidr", "", "comma-separated pod CIDRs: never steered (not given here or in --layout: every Node's spec.podCIDRs)")
	fs.StringVar(&o.service, "service-cidr", "", "comma-separated service CIDRs: never steered (not given here or in --layout: the ServiceCIDR objects)")
	fs.StringVar(&o.apiServers, "api-server-address", "", "comma-separated API server addresses, besides the kubeconfig host and the default/kubernetes EndpointSlice: never steered")
	fs.StringVar(&o.never, "never-route", "", "comma-separated CIDRs never steered")
	fs.StringVar(&o.podLinks, "pod-interfaces", "", "deprecated and ignored: a connection is inbound when it is addressed to the node from outside --vpc-cidr and --pod-cidr, whatever link it arrives on")
	fs.StringVar(&o.tables, "tables", fmt.Sprintf("%d,%d", def.Tables[0], def.Tables[1]), "the two steering tables (blue,green)")
	fs.IntVar(&o.priority, "rule-priority", def.Priority, "priority of the steering rule (after local and Cilium's, before main)")
	fs.IntVar(&o.markPriority, "mark-rule-priority", def.MarkPriority, "priority of the fwmark rule for replies of inbound connections (before the steering rule)")
	fs.StringVar(&o.mark, "mark", fmt.Sprintf("%#x", def.Mark), "the one connmark/mark bit this router owns; health-check probes carry it with a slot number in the six bits below it")
	fs.IntVar(&o.probePriority, "probe-rule-priority", def.ProbePriority, "priority of the rules that send health-check probes to their gateway (before --mark-rule-priority)")
	fs.IntVar(&o.probeTableBase, "probe-table-base", def.ProbeTableBase, "health-check probes of slot n (1..63) look up table base+n")
	fs.IntVar(&o.lanePriority, "lane-rule-priority", def.LanePriority, "priority of the rules that send a connection to its gateway of several (spec.gateways; before --rule-priority)")
	fs.IntVar(&o.laneTableBase, "lane-table-base", def.LaneTableBase, "connections of lane n (1..63) look up table base+n")
	fs.IntVar(&o.protocol, "route-protocol", def.Protocol, "route protocol number tagging our routes")
	fs.DurationVar(&o.resync, "resync", 30*time.Second, "full reconcile period: a safety net; route, rule, link, nexthop and nftables events repair drift at once, this catches what no event reports (src_valid_mark turned off through /proc/sys)")
	fs.BoolVar(&o.cleanup, "cleanup", false, "remove every rule, route and nftables table of ours, and exit")
	fs.BoolVar(&o.adoptLegacy, "adopt-legacy-routes", false, "remove the main-table routes that the old k8s-staticroute-operator left behind: those whose destination and gateway are exactly a StaticRoute's (each is logged)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":9402", "Prometheus metrics address (0 disables)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":9403", "/healthz and /readyz address")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of net/http/pprof, for profiling (0, the default, disables it; e.g. 127.0.0.1:9404)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)")
	dd := group.DefaultDamping()
	fs.DurationVar(&o.damping.HalfLife, "flap-half-life", dd.HalfLife, "flap damping of health-checked gateways: every change of a gateway's health costs 1000, halving every this long; 0 turns damping off")
	fs.Float64Var(&o.damping.Suppress, "flap-suppress", dd.Suppress, "a gateway whose flap penalty rises above this is damped: it carries its group only if no other member is up")
	fs.Float64Var(&o.damping.Reuse, "flap-reuse", dd.Reuse, "a damped gateway is released once its penalty has decayed below this")
	fs.DurationVar(&o.damping.MaxSuppress, "flap-max-suppress", dd.MaxSuppress, "the longest a gateway stays damped after its last change")
	v := fs.Bool("version", false, "print the version and exit")
	fs.IntVar(&o.verbosity, "v", 0, "log verbosity: 0 logs changes and errors, 1 also every reconcile and how long it took")
	err = fs.Parse(args)
	return o, *v, err
}

// policyOptions reads the kernel-side flags; pkg/policy checks them. A
// flag that does not parse keeps its default, so that it is reported
// once, beside every other mistake.
func policyOptions(o options) (policy.Options, error) {
	p := policy.DefaultOptions()
	var errs []error
	if t, err := policy.ParseTables(o.tables); err != nil {
		errs = append(errs, err)
	} else {
		p.Tables = t
	}
	if m, err := policy.ParseMark(o.mark); err != nil {
		errs = append(errs, err)
	} else {
		p.Mark = m
	}
	p.Priority, p.MarkPriority, p.Protocol = o.priority, o.markPriority, o.protocol
	p.ProbePriority, p.ProbeTableBase = o.probePriority, o.probeTableBase
	p.LanePriority, p.LaneTableBase = o.lanePriority, o.laneTableBase
	return p, errors.Join(append(errs, p.Validate())...)
}

func routerConfig(o options) (router.Config, error) {
	c := router.Config{NodeName: o.nodeName, VPCLink: o.vpcLink, Resync: o.resync, AdoptLegacyRoutes: o.adoptLegacy, RulePriority: o.priority,
		LaneTableBase: o.laneTableBase}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	c.Cluster, err = validate.Load(o.layout, validate.Flags{"vpc-cidr": o.vpc, "pod-cidr": o.pod, "service-cidr": o.service, "api-server-address": o.apiServers})
	add(err)
	c.NeverRoute, err = validate.ParsePrefixes("never-route", o.never)
	add(err)
	if o.nodeIP != "" {
		c.NodeIP, err = validate.ParseIPv4(o.nodeIP)
		if err != nil {
			add(fmt.Errorf("--node-ip (or $NODE_IP): %q %w", o.nodeIP, err))
		}
	}
	if c.NodeName == "" {
		add(errors.New("--node-name (or $NODE_NAME from the downward API) is required"))
	}
	add(o.damping.Validate())
	return c, errors.Join(errs...)
}
