package webhook

import (
	"net/netip"
	"sync"

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
// VPC every node router reports (validate.CommonVPC). It is computed
// again after a watched object changed, not on every admission.
type Discovery struct {
	Set validate.Config
	// The informers' stores of what is discovered; nil for a setting
	// that Set gives, which is then not watched. NodeStates needs Nodes.
	ServiceCIDRs, Nodes, NodeStates toolscache.Store

	mu    sync.Mutex
	fresh bool
	cfg   validate.Config
	err   error
}

// Config resolves the layout, again only after a change (Feed).
func (d *Discovery) Config() (validate.Config, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.fresh {
		d.cfg, d.err = validate.Resolve(d.Set, d.Discovered())
		d.fresh = true
	}
	return d.cfg, d.err
}

// Discovered reads the stores.
func (d *Discovery) Discovered() validate.Discovered {
	var out validate.Discovered
	if d.ServiceCIDRs != nil {
		out.Service = kube.ServiceCIDRs(d.ServiceCIDRs)
	}
	if d.Nodes != nil {
		out.Pod = kube.PodCIDRs(d.Nodes)
	}
	if d.NodeStates != nil && d.Nodes != nil {
		out.VPC, out.NoVPC = validate.CommonVPC(kube.ReportedVPCs(d.NodeStates, d.Nodes))
	}
	return out
}

// Feed is the informers' handler: any change makes the next Config
// resolve again.
func (d *Discovery) Feed() toolscache.ResourceEventHandler {
	stale := func() {
		d.mu.Lock()
		d.fresh = false
		d.mu.Unlock()
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { stale() },
		UpdateFunc: func(any, any) { stale() },
		DeleteFunc: func(any) { stale() },
	}
}

// CheckRanges says which of the pod and service ranges is neither set
// nor discovered, as the webhook checks at start. The VPC is left out:
// routers report it later, and until then admission refuses as
// unavailable, naming vpcCIDRs.
func (d *Discovery) CheckRanges() error {
	disc := d.Discovered()
	disc.VPC = []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0)} // stands for "judged at admission"
	_, err := validate.Resolve(d.Set, disc)
	return err
}
