package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/staticroute/staticroute/api/v1"
)

func TestOnChangePokesOnlyForChangesThatMatter(t *testing.T) {
	route := func(gen int64) *v1.StaticRoute {
		return &v1.StaticRoute{ObjectMeta: metav1.ObjectMeta{Name: "primary", Generation: gen, ResourceVersion: "7"}}
	}
	var out bytes.Buffer
	log := logr.FromSlogHandler(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.Level(-1)}))
	pokes := 0
	h := onChange(log, func(a, b metav1.Object) bool { return a.GetGeneration() != b.GetGeneration() }, func() { pokes++ })

	for _, step := range []struct {
		what  string
		do    func()
		pokes int
	}{
		{"an add pokes", func() { h.OnAdd(route(1), false) }, 1},
		{"an update of the status only does not", func() { h.OnUpdate(route(1), route(1)) }, 1},
		{"an update of the spec does", func() { h.OnUpdate(route(1), route(2)) }, 2},
		{"a delete does", func() { h.OnDelete(route(2)) }, 3},
		{"a delete seen only by a relist does", func() { h.OnDelete(cache.DeletedFinalStateUnknown{Key: "primary", Obj: route(2)}) }, 4},
	} {
		step.do()
		if pokes != step.pokes {
			t.Fatalf("%s: %d pokes, want %d", step.what, pokes, step.pokes)
		}
	}
	// At -v=1 each poke is logged with its object, the tombstone's too.
	if got := strings.Count(out.String(), `"name":"primary"`); got != 4 {
		t.Errorf("%d event lines name the route, want 4:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), `"op":"delete"`) {
		t.Errorf("no delete logged:\n%s", out.String())
	}
}
