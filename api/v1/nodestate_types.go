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
// +kubebuilder:resource:scope=Cluster,shortName=srns
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
}

// NodeClusterRanges compares the configured cluster ranges with what the
// router reads on the node.
type NodeClusterRanges struct {
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
