package kube

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// recorder writes down each handler call as "op name".
type recorder struct{ calls []string }

func (r *recorder) OnAdd(obj any, initial bool) {
	op := "add"
	if initial {
		op = "add(initial)"
	}
	r.calls = append(r.calls, op+" "+obj.(metav1.Object).GetName())
}
func (r *recorder) OnUpdate(_, obj any) {
	r.calls = append(r.calls, "update "+obj.(metav1.Object).GetName())
}
func (r *recorder) OnDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		r.calls = append(r.calls, "delete(unknown) "+d.Key)
		return
	}
	r.calls = append(r.calls, "delete "+obj.(metav1.Object).GetName())
}

func route(name string) *v1.StaticRoute {
	return &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: name, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
}

func TestStoreTellsTheHandlerAfterStoringAndTrims(t *testing.T) {
	h := &recorder{}
	s := &notifyingStore{Store: cache.NewStore(cache.MetaNamespaceKeyFunc), transform: Strip[*v1.StaticRoute](nil), handler: h}
	inf := &Informer{store: s}
	if inf.HasSynced() {
		t.Fatal("synced before the first list")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Replace([]any{route("a"), route("b")}, "1"))
	if !inf.HasSynced() {
		t.Fatal("not synced after the first list")
	}
	must(s.Add(route("c")))
	must(s.Update(route("c")))
	must(s.Delete(route("a")))
	// A relist after an outage: b is gone, d is new, c is still there.
	must(s.Replace([]any{route("c"), route("d")}, "9"))
	want := []string{"add(initial) a", "add(initial) b", "add c", "update c", "delete a", "update c", "add d", "delete(unknown) b"}
	if strings.Join(h.calls, ", ") != strings.Join(want, ", ") {
		t.Fatalf("handler calls\n got %v\nwant %v", h.calls, want)
	}
	for _, obj := range s.List() {
		if len(obj.(*v1.StaticRoute).ManagedFields) != 0 {
			t.Fatalf("%s kept its managed fields", obj.(*v1.StaticRoute).Name)
		}
	}
	if got := len(s.ListKeys()); got != 2 {
		t.Fatalf("%d objects stored, want 2", got)
	}
}

// The wait between failed requests stays near a second however long the
// outage lasts: the return of the API server is seen within ~1 s.
func TestBackoffStaysNearASecond(t *testing.T) {
	b := Backoff()
	var longest time.Duration
	for range 1000 {
		if d := b.Step(); d > longest {
			longest = d
		}
	}
	if longest > 1200*time.Millisecond || longest < 800*time.Millisecond {
		t.Fatalf("longest wait %s, want 0.8–1.2 s", longest)
	}
}

func TestConnectionLogsLossAndReturnOnce(t *testing.T) {
	var out bytes.Buffer
	c := NewConnection(logr.FromSlogHandler(slog.NewJSONHandler(&out, nil)))
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	c.report("staticroutes", nil)
	refused := errors.New("connect: connection refused")
	for range 5 {
		c.report("staticroutes", refused)
		c.report("nodes", refused)
	}
	if c.Lost() != now {
		t.Fatalf("lost since %v", c.Lost())
	}
	now = now.Add(30 * time.Second)
	c.report("nodes", nil)
	c.report("staticroutes", nil)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "lost the API server") || !strings.Contains(lines[0], "connection refused") ||
		!strings.Contains(lines[1], "reachable again") || !strings.Contains(lines[1], `"after":"30s"`) {
		t.Fatalf("log:\n%s", out.String())
	}
}
