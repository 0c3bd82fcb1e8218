// Package v1 holds the networking.digitalocean.com/v1 API: StaticRoute (the
// old operator's kind, extended compatibly) and StaticRouteNodeState.
//
// +kubebuilder:object:generate=true
// +groupName=networking.digitalocean.com
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every kind in this package.
var GroupVersion = schema.GroupVersion{Group: "networking.digitalocean.com", Version: "v1"}

// AddToScheme registers this package's kinds with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&StaticRoute{}, &StaticRouteList{},
		&StaticRouteNodeState{}, &StaticRouteNodeStateList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
