package kube

import (
	"sync"

	"k8s.io/client-go/tools/cache"
)

// Cached is a value derived from informers' stores, computed again only
// after one of them changed (Changed, or Feed as their handler), not on
// every read: a reconcile or an admission reads it on its hot path.
type Cached[T any] struct {
	compute func() T

	mu    sync.Mutex
	fresh bool
	v     T
}

// NewCached derives a value with compute, at the first Get.
func NewCached[T any](compute func() T) *Cached[T] { return &Cached[T]{compute: compute} }

// Get is the value, computed again if a store changed since.
func (c *Cached[T]) Get() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fresh {
		c.v, c.fresh = c.compute(), true
	}
	return c.v
}

// Changed says a store changed: the next Get computes again.
func (c *Cached[T]) Changed() {
	c.mu.Lock()
	c.fresh = false
	c.mu.Unlock()
}

// Feed is an informer handler that calls Changed on every event.
func (c *Cached[T]) Feed() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.Changed() },
		UpdateFunc: func(any, any) { c.Changed() },
		DeleteFunc: func(any) { c.Changed() },
	}
}
