package kube

import (
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/staticroute/staticroute/api/v1"
)

func testEvents(t *testing.T) *Events {
	t.Helper()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	e := NewEvents(&Client{Scheme: s}, "staticroute-node-router", "staticroute-node-router-node-a", logr.Discard())
	e.now = func() time.Time { return time.Unix(1700000000, 5) }
	return e
}

func TestEvents(t *testing.T) {
	sr := &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: "secondary", UID: types.UID("u-1"), ResourceVersion: "7"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: types.UID("u-2")}}

	t.Run("an Event about a cluster-scoped route names it by kind and UID and lives in default", func(t *testing.T) {
		e := testEvents(t)
		e.Eventf(sr, node, corev1.EventTypeNormal, "Applied", "Route", "node %s: group %s", "node-a", "primary")
		ev := <-e.queue
		if ev.Namespace != "default" || !strings.HasPrefix(ev.Name, "secondary.") || ev.APIVersion != "events.k8s.io/v1" || ev.Kind != "Event" {
			t.Errorf("meta %+v %+v", ev.TypeMeta, ev.ObjectMeta)
		}
		r := ev.Regarding
		if r.Kind != "StaticRoute" || r.APIVersion != "networking.digitalocean.com/v1" || r.Name != "secondary" || r.UID != "u-1" {
			t.Errorf("regarding %+v", r)
		}
		if ev.Related == nil || ev.Related.Kind != "Node" || ev.Related.Name != "node-a" {
			t.Errorf("related %+v", ev.Related)
		}
		if ev.Note != "node node-a: group primary" || ev.Reason != "Applied" || ev.Action != "Route" || ev.Type != "Normal" {
			t.Errorf("note %q reason %q action %q type %q", ev.Note, ev.Reason, ev.Action, ev.Type)
		}
		if ev.ReportingController != "staticroute-node-router" || ev.ReportingInstance != "staticroute-node-router-node-a" || ev.EventTime.IsZero() {
			t.Errorf("reporting %q %q at %v", ev.ReportingController, ev.ReportingInstance, ev.EventTime)
		}
	})
	t.Run("a note over the API server's 1 KiB is cut", func(t *testing.T) {
		e := testEvents(t)
		e.Eventf(sr, nil, corev1.EventTypeWarning, "Error", "Route", "%s", strings.Repeat("x", 5000))
		if ev := <-e.queue; len(ev.Note) != 1024 || ev.Related != nil {
			t.Errorf("note of %d bytes, related %v", len(ev.Note), ev.Related)
		}
	})
	t.Run("with the queue full an Event is dropped, and the caller does not wait", func(t *testing.T) {
		e := testEvents(t)
		for range cap(e.queue) + 10 {
			e.Eventf(sr, nil, corev1.EventTypeNormal, "Applied", "Route", "n")
		}
		if len(e.queue) != cap(e.queue) {
			t.Errorf("%d queued", len(e.queue))
		}
	})
	t.Run("an Event about a namespaced object lives in its namespace", func(t *testing.T) {
		e := testEvents(t)
		e.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "kube-system"}}, nil, corev1.EventTypeNormal, "Applied", "Route", "n")
		if ev := <-e.queue; ev.Namespace != "kube-system" || ev.Regarding.Kind != "Pod" {
			t.Errorf("Event in %q about %+v", ev.Namespace, ev.Regarding)
		}
	})
	t.Run("an object of a kind the router does not know is not recorded", func(t *testing.T) {
		e := testEvents(t)
		e.Eventf(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "kube-system"}}, nil, corev1.EventTypeNormal, "Applied", "Route", "n")
		if len(e.queue) != 0 {
			t.Errorf("%d queued", len(e.queue))
		}
	})
}

func TestStripDropsManagedFieldsAndWhatClearSays(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Status:     corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"big"}}}},
	}
	out, err := Strip(func(n *corev1.Node) { n.Status = corev1.NodeStatus{} })(n)
	if err != nil || out != n || n.ManagedFields != nil || n.Status.Images != nil || n.Name != "node-a" {
		t.Errorf("err %v, %+v", err, n)
	}
	if out, err := Strip[*corev1.Node](nil)("not an object"); err != nil || out != "not an object" {
		t.Errorf("%v %v", out, err)
	}
}
