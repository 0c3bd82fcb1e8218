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
	MaxFailingNodeNames = 10
)

// StaticRoute routes destinations via a gateway on every selected node. It
// keeps the old k8s-staticroute-operator's v1 shape: YAML written for it
// applies unchanged.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sr
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.status.group`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gateway`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Nodes",type=string,JSONPath=`.status.nodes`,description="nodes applied/selected"
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
	//
	// +required
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="must be an IPv4 address, such as 203.0.113.1"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() != 4 || !['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'].exists(r, cidr(r).containsIP(self))",message="must be a unicast VPC address, not in 0.0.0.0/8, loopback, link-local, multicast or broadcast"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.gateway is immutable: to fail over, create a new StaticRoute with spec.group set to this route's group",reason="FieldValueForbidden"
	Gateway string `json:"gateway"`

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
}

// Route states as the summarizer reports them.
const (
	StateActive     = "Active"
	StateStandby    = "Standby"
	StateConflicted = "Conflicted"
)

// StaticRouteStatus is written by the summarizer only, from the nodes'
// StaticRouteNodeState objects.
type StaticRouteStatus struct {
	// Group is the effective group (spec.group, or the route's own name).
	// +optional
	Group string `json:"group,omitempty"`
	// State is Active (this member carries the group's traffic), Standby
	// (a newer member does) or Conflicted (an older group keeps some of its
	// destinations).
	// +optional
	// +kubebuilder:validation:Enum=Active;Standby;Conflicted
	State string `json:"state,omitempty"`
	// Nodes is "applied/selected", for the printer column.
	// +optional
	Nodes string `json:"nodes,omitempty"`
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
