package kube

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Watch says which objects of one kind an informer holds.
type Watch struct {
	Client    rest.Interface // the kind's API group
	Resource  string         // plural, e.g. "nodes"
	Namespace string         // empty: all (or cluster-scoped)
	// Select narrows the list and watch, with label or field selectors.
	Select func(*metav1.ListOptions)
	// Example is an empty object of the kind, e.g. &corev1.Node{}.
	Example runtime.Object
	// Transform trims each object before it is stored (see Strip).
	Transform cache.TransformFunc
}

// NewInformer makes an informer for w that tells h of every change; Run
// starts it.
func NewInformer(w Watch, h cache.ResourceEventHandler) (cache.SharedIndexInformer, error) {
	sel := w.Select
	if sel == nil {
		sel = func(*metav1.ListOptions) {}
	}
	lw := cache.NewFilteredListWatchFromClient(w.Client, w.Resource, w.Namespace, sel)
	inf := cache.NewSharedIndexInformerWithOptions(lw, w.Example, cache.SharedIndexInformerOptions{ObjectDescription: w.Resource})
	if w.Transform != nil {
		if err := inf.SetTransform(w.Transform); err != nil {
			return nil, fmt.Errorf("informer on %s: %w", w.Resource, err)
		}
	}
	if _, err := inf.AddEventHandler(h); err != nil {
		return nil, fmt.Errorf("informer on %s: %w", w.Resource, err)
	}
	return inf, nil
}

// Strip is a transform that drops an object's managed fields (half of a
// small object, never read) and lets clear drop more of a T, such as a
// status the router does not read.
func Strip[T metav1.Object](clear func(T)) cache.TransformFunc {
	return func(obj any) (any, error) {
		if o, ok := obj.(T); ok {
			o.SetManagedFields(nil)
			if clear != nil {
				clear(o)
			}
		}
		return obj, nil
	}
}
