package kube

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Carry returns want's conditions, in want's order, each keeping old's
// transition time while its status holds and stamped now where it changed
// or is new: meta.SetStatusCondition's rule. Conditions of old that want
// lacks are dropped.
func Carry(old, want []metav1.Condition) []metav1.Condition {
	merged := make([]metav1.Condition, len(old))
	copy(merged, old)
	for _, c := range want {
		c.LastTransitionTime = metav1.Time{} // now, unless the status holds
		meta.SetStatusCondition(&merged, c)
	}
	out := make([]metav1.Condition, 0, len(want))
	for _, c := range want {
		out = append(out, *meta.FindStatusCondition(merged, c.Type))
	}
	return out
}
