package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Limits of one StaticRoute. The CRD schema needs them so that CEL's cost
// estimate stays inside the API server's budget; pkg/validate uses the same.
const (
	MaxDestinations     = 1024
	MaxDestinationLen   = 18 // "255.255.255.255/32"
	MaxGatewayLen       = 15 // "255.255.255.255"
	MaxGateways         = 8
	MaxDrainSeconds     = 86400
	MaxFailingNodeNames = 10
)

// StaticRoute routes destinations via a gateway on every selected node. It
// keeps the old k8s-staticroute-operator's v1 shape: YAML written for it
// applies unchanged.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sr,categories=staticrouting
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.status.group`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gateway`
// +kubebuilder:printcolumn:name="Gateways",type=string,JSONPath=`.spec.gateways`,priority=1,description="spec.gateways, for a member over several"
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Nodes",type=string,JSONPath=`.status.nodes`,description="nodes applied/selected"
// +kubebuilder:printcolumn:name="Fallback",type=integer,JSONPath=`.status.nodesOnFallback`,priority=1,description="nodes where an older member carries the group because this one's gateway is down as they see it"
// +kubebuilder:printcolumn:name="Destinations",type=string,JSONPath=`.spec.destinations`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="(has(oldSelf.spec.group) && size(oldSelf.spec.group) > 0 ? oldSelf.spec.group : oldSelf.metadata.name) == (has(self.spec.group) && size(self.spec.group) > 0 ? self.spec.group : self.metadata.name)",message="spec.group is immutable (empty means the route's own name, and may be set to it): to move destinations to another group, create a new StaticRoute in that group",fieldPath=".spec.group",reason="FieldValueForbidden"
type StaticRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   StaticRouteSpec   `json:"spec"`
	Status StaticRouteStatus `json:"status,omitempty"`
}

// StaticRouteSpec says which destinations leave every selected node via
// which gateway.
//
// +kubebuilder:validation:XValidation:rule="!has(self.destinations) || !has(self.gateway) || !self.destinations.exists(d, d == self.gateway || d == self.gateway + '/32')",message="spec.gateway must not also be a destination: the gateway is reached directly over the VPC",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.destinations) || !has(self.gateways) || !self.destinations.exists(d, self.gateways.exists(g, d == g || d == g + '/32'))",message="no gateway in spec.gateways may also be a destination: the gateways are reached directly over the VPC",fieldPath=".gateways"
// +kubebuilder:validation:XValidation:rule="has(self.gateway) != has(self.gateways)",message="give exactly one of spec.gateway (one NAT gateway) and spec.gateways (1 to 8 that share the traffic)",fieldPath=".gateway",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.gateways) == has(self.gateways)",message="spec.gateway and spec.gateways are immutable: to change gateways, create a new StaticRoute with spec.group set to this route's group",reason="FieldValueForbidden"
type StaticRouteSpec struct {
	// Destinations are IPv4 addresses (203.0.113.7) or CIDRs (203.0.113.0/24)
	// routed via the gateway.
	//
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=18
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || isCIDR(self)",message="must be an IPv4 address (203.0.113.7) or CIDR (203.0.113.0/24)"
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) ? ip(self).family() == 4 : (!isCIDR(self) || cidr(self).ip().family() == 4)",message="must be IPv4: IPv6 destinations are not supported"
	// +kubebuilder:validation:items:XValidation:rule="self != '0.0.0.0'",message="0.0.0.0 is not a destination: did you mean 0.0.0.0/0?"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || string(cidr(self).masked()) == self",message="must be a canonical CIDR (no host bits set), such as 198.51.100.0/24 for 198.51.100.7/24"
	// +kubebuilder:validation:items:XValidation:rule="self == '0.0.0.0' || !(isIP(self) && ip(self).family() == 4 || isCIDR(self) && cidr(self).ip().family() == 4) || !['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'].exists(r, isIP(self) ? cidr(r).containsIP(self) : cidr(r).containsCIDR(self))",message="must not lie inside a special range (0.0.0.0/8, loopback 127.0.0.0/8, link-local 169.254.0.0/16 incl. the metadata service, multicast 224.0.0.0/4, broadcast 255.255.255.255): these never leave via a gateway"
	Destinations []string `json:"destinations"`

	// Gateway is the IPv4 address of the NAT gateway inside the VPC. It is
	// immutable: to fail over, create a new StaticRoute in the same group.
	// Give either gateway or gateways.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="must be an IPv4 address, such as 203.0.113.1"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() != 4 || !['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'].exists(r, cidr(r).containsIP(self))",message="must be a unicast VPC address, not in 0.0.0.0/8, loopback, link-local, multicast or broadcast"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.gateway is immutable: to fail over, create a new StaticRoute with spec.group set to this route's group",reason="FieldValueForbidden"
	Gateway string `json:"gateway,omitempty"`

	// Gateways are 1 to 8 NAT gateways inside the VPC that carry the
	// destinations together, as the DOKS routing agent's Route's
	// gateways do: each new connection takes one of those that are up
	// (round-robin), and keeps it for its life while it stays up; when
	// one goes down, only its connections move. Immutable, like gateway:
	// to change the set, create a new StaticRoute in the same group. Give
	// either gateway or gateways.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) && ip(self).family() == 4",message="must be an IPv4 address, such as 203.0.113.1"
	// +kubebuilder:validation:items:XValidation:rule="!isIP(self) || ip(self).family() != 4 || !['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'].exists(r, cidr(r).containsIP(self))",message="must be a unicast VPC address, not in 0.0.0.0/8, loopback, link-local, multicast or broadcast"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.gateways is immutable: to change the gateways, create a new StaticRoute with spec.group set to this route's group",reason="FieldValueForbidden"
	Gateways []string `json:"gateways,omitempty"`

	// Group names the failover group. Empty means the route's own name, so
	// the old operator's YAML keeps its meaning. The newest member of a group
	// (creationTimestamp, then the greater name) carries its traffic.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="size(self) == 0 || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a DNS subdomain (lower case letters, digits, '-' and '.'), like a StaticRoute name"
	Group string `json:"group,omitempty"`

	// NodeSelector picks the nodes that route these destinations. Empty
	// selects every node.
	//
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// HealthCheck makes every node probe this route's gateway, through
	// it, and fail over by itself: a group's traffic takes its newest
	// member whose gateway is up as that node sees it (the newest if none
	// is). Without it the gateway counts as up. It may change in place: it
	// tunes the probes, it does not move traffic by itself.
	//
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// DrainSeconds makes a planned failover to this member drain instead
	// of cut: when it takes its group over while the member it replaces
	// is still up, connections opened before the switch keep that
	// member's gateway until they end or until DrainSeconds after this
	// member's creation; new connections take this member at once. A
	// gateway that dies is never drained to. 0 (the default): every
	// connection moves at the switch. It may change in place (0 ends a
	// drain now).
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	DrainSeconds int32 `json:"drainSeconds,omitempty"`
}

// Health check protocols.
const (
	ProbeICMP = "ICMP"
	ProbeTCP  = "TCP"
)

// Health check defaults and bounds: the CRD's, and pkg/group's for objects
// that did not come through the API server.
const (
	DefaultProbePeriodMilliseconds = 200
	MinProbePeriodMilliseconds     = 50
	DefaultProbeThreshold          = 3
)

// HealthCheck says how nodes probe a gateway.
//
// +kubebuilder:validation:XValidation:rule="self.protocol == 'TCP' ? has(self.port) : !has(self.port)",message="port is required with protocol TCP and not allowed with ICMP",fieldPath=".port"
// +kubebuilder:validation:XValidation:rule="!has(self.timeoutMilliseconds) || self.timeoutMilliseconds <= self.periodMilliseconds",message="timeoutMilliseconds must not exceed periodMilliseconds: a probe is answered or lost before the next one goes",fieldPath=".timeoutMilliseconds"
type HealthCheck struct {
	// Target is the IPv4 address probed through this route's gateway.
	// Empty: the gateway itself, which proves the gateway host is up but
	// not that it forwards or NATs; an address beyond it proves both.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="must be an IPv4 address, such as 192.0.2.1"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() != 4 || !['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'].exists(r, cidr(r).containsIP(self))",message="must be a unicast address, not in 0.0.0.0/8, loopback, link-local, multicast or broadcast"
	Target string `json:"target,omitempty"`

	// Protocol is ICMP (echo) or TCP (a connect to port, closed at once).
	//
	// +optional
	// +kubebuilder:default=ICMP
	// +kubebuilder:validation:Enum=ICMP;TCP
	Protocol string `json:"protocol,omitempty"`

	// Port is the TCP port to connect to (TCP only).
	//
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// PeriodMilliseconds is the time between two probes.
	//
	// +optional
	// +kubebuilder:default=200
	// +kubebuilder:validation:Minimum=50
	// +kubebuilder:validation:Maximum=60000
	PeriodMilliseconds int32 `json:"periodMilliseconds,omitempty"`

	// TimeoutMilliseconds is how long a probe waits for its answer before
	// it counts as lost. Empty: half the period.
	//
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	TimeoutMilliseconds int32 `json:"timeoutMilliseconds,omitempty"`

	// FailureThreshold is how many probes lost in a row take the gateway
	// down.
	//
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold int32 `json:"failureThreshold,omitempty"`

	// SuccessThreshold is how many probes answered in a row bring it up
	// again.
	//
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
}

// Route states as the summarizer reports them.
const (
	StateActive     = "Active"
	StateStandby    = "Standby"
	StateConflicted = "Conflicted"
	// StateFallback: an older member that carries the group on some
	// nodes, because newer members' gateways are down as they see it.
	StateFallback = "Fallback"
)

// Condition types of a StaticRoute's status, as the summarizer writes
// them.
const (
	// ConditionActive: this member carries its group (True), on some
	// nodes as a fallback (True, reason Fallback), or stands by (False).
	ConditionActive = "Active"
	// ConditionApplied: the nodes it selects route it.
	ConditionApplied = "Applied"
	// ConditionGatewayReachable: its gateway is up as the nodes' health
	// checks see it.
	ConditionGatewayReachable = "GatewayReachable"
)

// StaticRouteStatus is written by the summarizer only, from the nodes'
// StaticRouteNodeState objects.
type StaticRouteStatus struct {
	// Group is the effective group (spec.group, or the route's own name).
	// +optional
	Group string `json:"group,omitempty"`
	// State is Active (this newest member carries the group's traffic),
	// Standby (a newer member does), Fallback (an older member that
	// carries it on the nodes that see the newer members' gateways down)
	// or Conflicted (an older group keeps some of its destinations).
	// +optional
	// +kubebuilder:validation:Enum=Active;Standby;Fallback;Conflicted
	State string `json:"state,omitempty"`
	// Nodes is "applied/selected", for the printer column: for a Fallback
	// member, the nodes where it carries the group.
	// +optional
	Nodes string `json:"nodes,omitempty"`
	// NodesOnFallback counts the selected nodes where an older member
	// carries the group because this one's gateway is down as they see it.
	// +optional
	NodesOnFallback int32 `json:"nodesOnFallback,omitempty"`
	// +optional
	NodesSelected int32 `json:"nodesSelected,omitempty"`
	// +optional
	NodesApplied int32 `json:"nodesApplied,omitempty"`
	// +optional
	NodesFailed int32 `json:"nodesFailed,omitempty"`
	// FailingNodes names up to 10 nodes where this route is not applied.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	FailingNodes []string `json:"failingNodes,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// StaticRouteList is a list of StaticRoutes.
type StaticRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StaticRoute `json:"items"`
}

// EffectiveGroup is spec.group, or the route's own name when that is empty.
func (r *StaticRoute) EffectiveGroup() string {
	if r.Spec.Group != "" {
		return r.Spec.Group
	}
	return r.Name
}

// GatewayList is the route's gateways: spec.gateways, or spec.gateway
// alone. Entries that do not parse are kept: callers check them.
func (r *StaticRoute) GatewayList() []string {
	if len(r.Spec.Gateways) > 0 {
		return r.Spec.Gateways
	}
	if r.Spec.Gateway == "" {
		return nil
	}
	return []string{r.Spec.Gateway}
}
