package kube

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
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
	// Conn, if set, logs when the API server is lost and found again;
	// informers on one server share one.
	Conn *Connection
}

// Backoff is how long an informer waits before it lists or watches again
// after a failure: 0.1 s doubling to 0.8 s, each wait up to half longer
// at random. client-go's informers wait up to a minute (0.8 s doubling to
// 30 s, jitter 1), so after a 30 s outage a failover applied when the API
// server is back reached the nodes 22–43 s later. For a failover agent the
// return of the control plane is exactly when its user acts. The cost is
// at most one list or watch attempt per informer a second during an
// outage.
func Backoff() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 4, Cap: 800 * time.Millisecond}
}

// Informer keeps an in-memory copy of the objects w names: a client-go
// Reflector (list, then watch, relist on expiry) feeding a store that
// tells a handler of each change. It is what client-go's shared informer
// does, less the shared part and its queue, and with Backoff, which the
// shared informer does not let a caller choose.
type Informer struct {
	store     *notifyingStore
	reflector *cache.Reflector
}

// NewInformer makes an informer for w that tells h of every change, after
// the store holds it; Run starts it.
func NewInformer(w Watch, h cache.ResourceEventHandler) (*Informer, error) {
	if w.Example == nil || w.Client == nil || w.Resource == "" {
		return nil, fmt.Errorf("informer on %q: Client, Resource and Example are required", w.Resource)
	}
	sel := w.Select
	if sel == nil {
		sel = func(*metav1.ListOptions) {}
	}
	lw := &listWatch{w: w, sel: sel}
	s := &notifyingStore{Store: cache.NewStore(cache.MetaNamespaceKeyFunc), transform: w.Transform, handler: h}
	b := Backoff()
	r := cache.NewReflectorWithOptions(lw, w.Example, s, cache.ReflectorOptions{
		Name: w.Resource, TypeDescription: w.Resource, Backoff: &b,
	})
	return &Informer{store: s, reflector: r}, nil
}

// Run lists and watches until ctx ends.
func (i *Informer) Run(ctx context.Context) { i.reflector.RunWithContext(ctx) }

// HasSynced says whether the first list has been stored.
func (i *Informer) HasSynced() bool {
	i.store.mu.RLock()
	defer i.store.mu.RUnlock()
	return i.store.synced
}

// GetStore is the informer's copy: read it, never write it.
func (i *Informer) GetStore() cache.Store { return i.store }

// listWatch lists and watches what w names, each request tried once and
// reported to w.Conn: client-go's REST client otherwise retries a failed
// request up to ten times inside one call, so that an outage shows neither
// in the informer's backoff nor in the log.
type listWatch struct {
	w   Watch
	sel func(*metav1.ListOptions)
}

func (l *listWatch) request(options *metav1.ListOptions) *rest.Request {
	l.sel(options)
	return l.w.Client.Get().Namespace(l.w.Namespace).Resource(l.w.Resource).
		VersionedParams(options, metav1.ParameterCodec).MaxRetries(0)
}

func (l *listWatch) report(err error) {
	if l.w.Conn != nil {
		l.w.Conn.report(l.w.Resource, err)
	}
}

func (l *listWatch) ListWithContext(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
	obj, err := l.request(&options).Do(ctx).Get()
	l.report(err)
	return obj, err
}

func (l *listWatch) WatchWithContext(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
	options.Watch = true
	w, err := l.request(&options).Watch(ctx)
	if err == nil && reflect.TypeOf(w) == reflect.TypeOf(watch.NewEmptyWatch()) {
		// The REST client answers a connection closed before the
		// response (EOF) with an empty, closed watch and no error.
		err = errors.New("the connection was closed before the watch started")
	}
	l.report(err)
	return w, err
}

// List and Watch make listWatch a cache.ListerWatcher, which the
// Reflector's constructor takes; it calls the WithContext methods.
func (l *listWatch) List(options metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), options)
}

func (l *listWatch) Watch(options metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), options)
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
