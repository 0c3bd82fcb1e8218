package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Per-group states a node reports.
const (
	NodeGroupApplied          = "Applied"
	NodeGroupGatewayNotOnLink = "GatewayNotOnLink"
	NodeGroupConflicted       = "Conflicted"
	NodeGroupError            = "Error"
)

// StaticRouteNodeState is one node's report: what its router applied for each
// group. There is one per node, named after it and owned by its Node; only
// that node's router writes it, and only on change. Routers never watch these
// objects; the summarizer aggregates them into each StaticRoute's status.
//
// The report lives in .status without a status subresource, so that a
// router creates or updates it in one write.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=srns,categories=staticrouting
// +kubebuilder:printcolumn:name="Groups",type=integer,JSONPath=`.status.groupCount`
// +kubebuilder:printcolumn:name="Applied",type=integer,JSONPath=`.status.appliedCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StaticRouteNodeState struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status StaticRouteNodeStateStatus `json:"status,omitempty"`
}

// StaticRouteNodeStateStatus is what a node's router applied.
type StaticRouteNodeStateStatus struct {
	// +optional
	GroupCount int32 `json:"groupCount,omitempty"`
	// +optional
	AppliedCount int32 `json:"appliedCount,omitempty"`
	// Groups that select this node.
	// +optional
	// +listType=map
	// +listMapKey=group
	Groups []NodeGroupState `json:"groups,omitempty"`
	// ClusterRanges are the ranges the router carves out, as configured and
	// as seen on the node.
	// +optional
	ClusterRanges NodeClusterRanges `json:"clusterRanges,omitempty"`
	// Steering is the ip rule and the table that carry the groups'
	// routes on this node.
	// +optional
	Steering *NodeSteering `json:"steering,omitempty"`
	// CarveOuts are what this node keeps direct whatever a group steers,
	// and why: the VPC, pod and service ranges, the API servers, the
	// connected routes, --never-route, the special ranges (link-local,
	// multicast, …). kubectl staticroute why reads them.
	// +optional
	// +listType=atomic
	CarveOuts []NodeCarveOut `json:"carveOuts,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NodeGroupState is one group's state on one node.
type NodeGroupState struct {
	Group string `json:"group"`
	// ActiveMember is the StaticRoute whose destinations this node routes.
	ActiveMember string `json:"activeMember"`
	// +optional
	Gateway string `json:"gateway,omitempty"`
	// Prefixes routed via the gateway (after conflict resolution).
	// +optional
	// +listType=atomic
	Prefixes []string `json:"prefixes,omitempty"`
	// +kubebuilder:validation:Enum=Applied;GatewayNotOnLink;Conflicted;Error
	State string `json:"state"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// Selection is why ActiveMember carries the group on this node:
	// Newest; NewerDown (the gateways of newer members are down, damped
	// or not proven yet as this node's health checks see them); AllDown (every member's is: the
	// newest carries the group, failing closed); Held (health asks for
	// another member, but the group switched less than a probe period ago:
	// it switches when the period is over).
	// +optional
	// +kubebuilder:validation:Enum=Newest;NewerDown;AllDown;Held
	Selection Selection `json:"selection,omitempty"`
	// Gateways are the health of the members' gateways as this node's
	// probes see them, for members with a health check: one entry per
	// gateway of each member.
	// +optional
	// +listType=map
	// +listMapKey=member
	// +listMapKey=gateway
	Gateways []NodeGatewayHealth `json:"gateways,omitempty"`
	// Lanes are the active member's gateways when it has several
	// (spec.gateways): which ones new connections take, round-robin, and
	// where each one's connections leave now.
	// +optional
	// +listType=atomic
	Lanes []NodeLane `json:"lanes,omitempty"`
	// Drain is the member whose connections drain after a planned
	// failover (spec.drainSeconds of the active member), if any.
	// +optional
	Drain *NodeDrain `json:"drain,omitempty"`
}

// NodeDrain is a member whose connections from before a planned failover
// keep its gateways on one node until they end or until Until.
type NodeDrain struct {
	Member string      `json:"member"`
	Until  metav1.Time `json:"until"`
	// Connections counts the connections draining when the node state
	// was written (conntrack, by the draining lanes' marks; a connection
	// counts from its first packet after the switch). The router
	// refreshes it every few seconds while the drain lasts.
	Connections int32 `json:"connections"`
}

// NodeLane is one gateway of a group's active member with several, on
// one node: its connections carry Mark in their conntrack mark and leave
// through table Table.
type NodeLane struct {
	Gateway string `json:"gateway"`
	// Member is the lane's member: the active one, or the draining one.
	// +optional
	Member string `json:"member,omitempty"`
	// Draining: the lane of a member that drains; it takes no new
	// connection.
	// +optional
	Draining bool `json:"draining,omitempty"`
	// Open: new connections may take it. A lane is open while its
	// gateway is up (or, if none is, the best there is).
	// +optional
	Open bool `json:"open,omitempty"`
	// To is where its connections leave while its own gateway is down
	// (the next gateway up); empty: by its own gateway.
	// +optional
	To string `json:"to,omitempty"`
	// Mark is the lane's conntrack and packet mark, Table its routing
	// table.
	Mark  int32 `json:"mark"`
	Table int32 `json:"table"`
}

// Selection is why a member carries its group on a node
// (NodeGroupState.Selection). pkg/group's rules choose; nodes, the
// summarizer and the plugin read it by these names.
type Selection string

// Selections.
const (
	// SelectionNewest: the newest member, and it is up (or has no health
	// check).
	SelectionNewest Selection = "Newest"
	// SelectionNewerDown: newer members' gateways are down, damped or not
	// proven yet (pending) as the node sees them.
	SelectionNewerDown Selection = "NewerDown"
	// SelectionAllDown: every member's gateway is down; the newest
	// carries the group (fail closed: never the node's own address).
	SelectionAllDown Selection = "AllDown"
	// SelectionHeld: health asks for another member, but the group
	// switched less than a period ago; it switches when the period is
	// over.
	SelectionHeld Selection = "Held"
)

// Gateway health as a node sees it.
const (
	GatewayUp   = "Up"
	GatewayDown = "Down"
	// GatewayPending: no probe through it has been answered yet. Its
	// member takes no traffic over until one is; it keeps what it
	// carries already.
	GatewayPending = "Pending"
	// GatewayDamped: up, but it went down and up too often of late (flap
	// damping): its member carries the group only if no other member is
	// up, until DampedUntil.
	GatewayDamped = "Damped"
)

// NodeGatewayHealth is one member's gateway as one node's probes see it.
type NodeGatewayHealth struct {
	Member  string `json:"member"`
	Gateway string `json:"gateway"`
	// Probe is what is probed, e.g. "icmp 192.0.2.7 via 198.51.100.4".
	// +optional
	Probe string `json:"probe,omitempty"`
	// +kubebuilder:validation:Enum=Up;Down;Pending;Damped
	Health string `json:"health"`
	// Message says why a gateway is Pending or Damped.
	// +optional
	Message string `json:"message,omitempty"`
	// DampedUntil is when a damped gateway is released if it does not
	// change again.
	// +optional
	DampedUntil *metav1.Time `json:"dampedUntil,omitempty"`
	// LastChange is when the health last changed; empty: never, since the
	// router started.
	// +optional
	LastChange *metav1.Time `json:"lastChange,omitempty"`
	// RTT is the round trip of the last answered probe when this report
	// was written (it does not trigger a write by itself; the live value
	// is the metric staticroute_probe_rtt_seconds).
	// +optional
	RTT string `json:"rtt,omitempty"`
}

// NodeSteering is the ip rule and the table that carry a node's steered
// routes: "priority RulePriority: from all lookup Table".
type NodeSteering struct {
	RulePriority int32 `json:"rulePriority"`
	// Table is the steering table the rule points at now (two take
	// turns); 0: not known.
	// +optional
	Table int32 `json:"table,omitempty"`
}

// NodeCarveOut is a range a node never steers, and why.
type NodeCarveOut struct {
	Prefix string `json:"prefix"`
	// Reason names the range, e.g. "the VPC CIDR 198.51.100.0/24".
	Reason string `json:"reason"`
}

// NodeClusterRanges compares the configured cluster ranges with what the
// router reads on the node.
type NodeClusterRanges struct {
	// VPC is the VPC this router works in: the layout's vpcCIDRs, or when
	// it sets none, the prefix of the node's address on its VPC link. The
	// webhook admits gateways in what every node reports in common when
	// the layout sets no VPC.
	// +optional
	// +listType=atomic
	VPC []string `json:"vpc,omitempty"`
	// +optional
	// +listType=atomic
	Configured []string `json:"configured,omitempty"`
	// +optional
	// +listType=atomic
	Seen []string `json:"seen,omitempty"`
	// +optional
	// +listType=atomic
	Mismatches []string `json:"mismatches,omitempty"`
}

// +kubebuilder:object:root=true

// StaticRouteNodeStateList is a list of StaticRouteNodeStates.
type StaticRouteNodeStateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StaticRouteNodeState `json:"items"`
}
