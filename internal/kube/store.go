package kube

import (
	"sync"

	"k8s.io/client-go/tools/cache"
)

// notifyingStore is the store a Reflector fills: it trims each object,
// stores it, then tells the handler, so that a handler that reads the
// store sees the change it is told of. The Reflector is its only writer.
type notifyingStore struct {
	cache.Store
	transform cache.TransformFunc
	handler   cache.ResourceEventHandler

	mu     sync.RWMutex
	synced bool // the first list is stored
}

func (s *notifyingStore) trim(obj any) (any, error) {
	if s.transform == nil {
		return obj, nil
	}
	return s.transform(obj)
}

func (s *notifyingStore) Add(obj any) error {
	obj, err := s.trim(obj)
	if err != nil {
		return err
	}
	old, existed, err := s.Store.Get(obj)
	if err != nil {
		return err
	}
	if err := s.Store.Add(obj); err != nil {
		return err
	}
	if existed {
		s.handler.OnUpdate(old, obj)
	} else {
		s.handler.OnAdd(obj, s.initial())
	}
	return nil
}

func (s *notifyingStore) Update(obj any) error { return s.Add(obj) }

func (s *notifyingStore) Delete(obj any) error {
	old, existed, err := s.Store.Get(obj)
	if err != nil {
		return err
	}
	if err := s.Store.Delete(obj); err != nil {
		return err
	}
	if existed {
		obj = old
	}
	s.handler.OnDelete(obj)
	return nil
}

// Replace stores a whole (re)list and tells the handler what it changed:
// objects that went while no watch was open are deletes whose last state
// is unknown, as client-go's informers say.
func (s *notifyingStore) Replace(list []any, resourceVersion string) error {
	for i, obj := range list {
		o, err := s.trim(obj)
		if err != nil {
			return err
		}
		list[i] = o
	}
	before := map[string]any{}
	for _, obj := range s.Store.List() {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			before[key] = obj
		}
	}
	if err := s.Store.Replace(list, resourceVersion); err != nil {
		return err
	}
	initial := s.initial()
	for _, obj := range list {
		key, err := cache.MetaNamespaceKeyFunc(obj)
		if err != nil {
			continue
		}
		if old, ok := before[key]; ok {
			delete(before, key)
			s.handler.OnUpdate(old, obj)
		} else {
			s.handler.OnAdd(obj, initial)
		}
	}
	for key, old := range before {
		s.handler.OnDelete(cache.DeletedFinalStateUnknown{Key: key, Obj: old})
	}
	s.mu.Lock()
	s.synced = true
	s.mu.Unlock()
	return nil
}

// Resync means nothing to a store that is not a queue.
func (s *notifyingStore) Resync() error { return nil }

func (s *notifyingStore) initial() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return !s.synced
}
