package webhook

import (
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/pkg/validate"
)

// Layout is the cluster's layout as admission judges by it.
type Layout interface {
	// Config is the layout now; an error says which setting is not
	// known (yet) and how to set it.
	Config() (validate.Config, error)
}

// Fixed is a layout given whole (flags or a layout file that sets every
// range): nothing is discovered.
type Fixed validate.Config

// Config is f.
func (f Fixed) Config() (validate.Config, error) { return validate.Config(f), nil }

// Discovery is a layout that takes what the layout file leaves out from
// what the cluster says: the ServiceCIDRs, the Nodes' podCIDRs, and the
// VPC every node router reports (validate.CommonVPC). It is resolved
// again after a watched object changed (Feed), not on every admission.
type Discovery struct {
	Set validate.Config
	// The informers' stores of what is discovered; nil for a setting
	// that Set gives, which is then not watched. NodeStates needs Nodes.
	ServiceCIDRs, Nodes, NodeStates toolscache.Store

	resolved *kube.Cached[resolved]
}

type resolved struct {
	cfg validate.Config
	err error
}

// NewDiscovery is a Discovery of what set leaves out; give it its
// stores before the first Config.
func NewDiscovery(set validate.Config) *Discovery {
	d := &Discovery{Set: set}
	d.resolved = kube.NewCached(func() resolved {
		cfg, err := validate.Resolve(d.Set, d.Discovered())
		return resolved{cfg, err}
	})
	return d
}

// Config resolves the layout, again only after a change (Feed).
func (d *Discovery) Config() (validate.Config, error) {
	r := d.resolved.Get()
	return r.cfg, r.err
}

// Discovered reads the stores.
func (d *Discovery) Discovered() validate.Discovered {
	out := kube.Discover(d.Nodes, d.ServiceCIDRs)
	if d.NodeStates != nil && d.Nodes != nil {
		out.VPC, out.NoVPC = validate.CommonVPC(kube.ReportedVPCs(d.NodeStates, d.Nodes))
	}
	return out
}

// Feed is the informers' handler: any change makes the next Config
// resolve again.
func (d *Discovery) Feed() toolscache.ResourceEventHandler { return d.resolved.Feed() }

// CheckRanges says which of the pod and service ranges is neither set
// nor discovered, as the webhook checks at start. The VPC is left out:
// routers report it later, and until then admission refuses as
// unavailable, naming vpcCIDRs.
func (d *Discovery) CheckRanges() error { return validate.CheckRanges(d.Set, d.Discovered()) }
