// Package policy computes a node's desired routing state from the
// StaticRoutes, its Node and what the node sees: pure, printable, and the
// same on every node for the same objects. Package datapath writes it to
// the kernel.
package policy

// Options are the router's fixed choices, from flags. The defaults avoid
// the numbers other node agents use; see DefaultOptions.
type Options struct {
	// Tables are the two steering tables; one is active at a time.
	Tables [2]int
	// Priority of the steering rule ("lookup <table>", no mark). It sits
	// after the local table (0) and Cilium's rules (up to 111, and 9, 10,
	// 100 for proxy/encryption) and before main (32766), with room on
	// both sides for an administrator's rules.
	Priority int
	// MarkPriority is the rule "fwmark Mark/Mark lookup main": replies of
	// connections that came in from outside leave the way they came. It
	// must come before the steering rule.
	MarkPriority int
	// Mark is the one connmark/packet-mark bit this router owns. 0x40 is
	// clear of kube-proxy (0x4000, 0x8000), Calico (0xffff0000), Cilium
	// (0x0f00, 0xf000 and identity bits above 16), the AWS VPC CNI (0x80),
	// Istio (0x539) and Weave (0x20000, 0x40000).
	Mark uint32
	// Protocol tags every route we write ("proto 146"), so that other
	// agents (systemd-networkd, NetworkManager) leave them alone and
	// cleanup finds only ours.
	Protocol int
	// NFTable is the name of our nftables table (family inet).
	NFTable string
	// ProbePriority is the priority of the rules that send a health
	// check's probes to its gateway ("fwmark ProbeMark(slot)/ProbeMask
	// lookup ProbeTable(slot)"): before MarkPriority, whose mark bit the
	// probe marks share, and so before the steering rule.
	ProbePriority int
	// ProbeTableBase+slot is the table of the probe in that slot
	// (1..MaxProbes).
	ProbeTableBase int
	// LanePriority is the priority of the rules that send a lane's
	// connections to its table ("fwmark LaneMark(slot)/LaneMask lookup
	// LaneTable(slot)"): before the steering rule. LaneTableBase+slot is
	// the table of the lane in that slot (1..MaxLanes).
	LanePriority  int
	LaneTableBase int
}

// ProbeMask is the mark bits the probe rules match: the router's Mark bit
// and the six bits below it that number the slot. Packets with the Mark
// bit alone (replies of inbound connections) never match a probe rule.
func (o Options) ProbeMask() uint32 { return o.Mark | MaxProbes }

// ProbeMark is the packet mark of the probes in slot.
func (o Options) ProbeMark(slot int) uint32 { return o.Mark | uint32(slot) }

// LaneMask is the mark bits the lane rules match: the same as the
// probes'. A lane's mark is its slot with the Mark bit clear, so that
// packets of inbound connections (Mark alone) and probes (Mark and a
// slot) never match a lane rule, and a lane's packet that finds no lane
// rule (its lane was just removed) takes the steering table, never the
// mark rule to main.
func (o Options) LaneMask() uint32 { return o.ProbeMask() }

// LaneMark is the mark of the connections of the lane in slot.
func (o Options) LaneMark(slot int) uint32 { return uint32(slot) }

// LaneTable is the routing table of the lane in slot.
func (o Options) LaneTable(slot int) int { return o.LaneTableBase + slot }

// ProbeTable is the routing table of the probes in slot.
func (o Options) ProbeTable(slot int) int { return o.ProbeTableBase + slot }

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Tables:       [2]int{52101, 52102},
		Priority:     30010,
		MarkPriority: 30000,
		Mark:         0x40,
		Protocol:     146,
		NFTable:      "staticroute",
		// 29990 and 52201..52263: next to ours, clear of others'.
		ProbePriority:  29990,
		ProbeTableBase: 52200,
		// 30005 and 52301..52363.
		LanePriority:  30005,
		LaneTableBase: 52300,
	}
}
