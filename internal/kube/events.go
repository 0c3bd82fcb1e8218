package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/reference"
)

// Events records events.k8s.io/v1 Events in the background, so that a
// report never waits for the API server. The router sends few (only on a
// transition, at most eleven per report); when the queue is full an Event
// is dropped, as the node state holds the same facts.
//
// client-go's recorder (tools/events) would aggregate repeats too, but it
// links the whole clientset, every API group, into each router.
type Events struct {
	client               *Client
	controller, instance string
	queue                chan *eventsv1.Event
	log                  logr.Logger
	now                  func() time.Time
}

// NewEvents records Events as reporting controller and instance.
func NewEvents(c *Client, controller, instance string, log logr.Logger) *Events {
	return &Events{client: c, controller: controller, instance: instance, queue: make(chan *eventsv1.Event, 64), log: log, now: time.Now}
}

// Eventf queues an Event about regarding (and related, if not nil); its
// note is note formatted with args.
func (e *Events) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	ev, err := e.event(regarding, related, eventtype, reason, action, fmt.Sprintf(note, args...))
	if err != nil {
		e.log.Error(err, "Event not recorded", "reason", reason)
		return
	}
	select {
	case e.queue <- ev:
	default:
		e.log.V(1).Info("Event dropped: too many queued", "reason", reason, "regarding", ev.Regarding.Name)
	}
}

// maxNote is the API server's limit on an Event's note.
const maxNote = 1024

func (e *Events) event(regarding, related runtime.Object, eventtype, reason, action, note string) (*eventsv1.Event, error) {
	ref, err := reference.GetReference(e.client.Scheme, regarding)
	if err != nil {
		return nil, fmt.Errorf("referring to the Event's object: %w", err)
	}
	now := e.now()
	ns := ref.Namespace
	if ns == "" {
		// Cluster-scoped objects (StaticRoutes, Nodes) have their Events here.
		ns = metav1.NamespaceDefault
	}
	if len(note) > maxNote {
		note = note[:maxNote]
	}
	ev := &eventsv1.Event{
		TypeMeta:            metav1.TypeMeta{APIVersion: eventsv1.SchemeGroupVersion.String(), Kind: "Event"},
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()), Namespace: ns},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: e.controller,
		ReportingInstance:   e.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Note:                note,
		Type:                eventtype,
	}
	if related != nil {
		if rel, err := reference.GetReference(e.client.Scheme, related); err == nil {
			ev.Related = rel
		}
	}
	return ev, nil
}

// Run sends queued Events until ctx ends.
func (e *Events) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.queue:
			if err := e.send(ctx, ev); err != nil {
				e.log.Error(err, "Event not recorded", "reason", ev.Reason, "regarding", ev.Regarding.Name)
			}
		}
	}
}

func (e *Events) send(ctx context.Context, ev *eventsv1.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return e.client.Events.Post().Namespace(ev.Namespace).Resource("events").Body(body).Do(ctx).Error()
}
