package validate

import (
	"fmt"
	"testing"
	"time"
)

// existing builds n routes of 10 /32 destinations each, all in 198.18.0.0/15,
// in groups of two members.
func existing(n int) *Index {
	x := NewIndex()
	for i := range n {
		dests := make([]string, 10)
		for j := range dests {
			v := i*10 + j
			dests[j] = fmt.Sprintf("198.%d.%d.%d", 18+v>>16, (v>>8)&255, v&255)
		}
		x.Put(RouteOf(route(fmt.Sprintf("r%05d", i), fmt.Sprintf("g%05d", i/2), "10.116.0.4", t0.Add(time.Duration(i)*time.Second), dests...)))
	}
	return x
}

func BenchmarkValidate(b *testing.B) {
	for _, n := range []int{0, 10_000} {
		others := existing(n)
		b.Run(fmt.Sprintf("existing=%d/new-group", n), func(b *testing.B) {
			sr := route("new", "", "10.116.0.12", t0.Add(time.Hour), "203.0.113.0/25", "203.0.113.128/26", "192.0.2.7", "198.51.100.0/24")
			b.ReportAllocs()
			for b.Loop() {
				if res := StaticRoute(tutorialConfig(), others, sr, nil); len(res.Errors) > 0 {
					b.Fatal(res.Errors)
				}
			}
		})
		b.Run(fmt.Sprintf("existing=%d/failover-member", n), func(b *testing.B) {
			if n == 0 {
				b.Skip("no group to join")
			}
			r, _ := others.Get("r00001")
			dests := make([]string, len(r.Destinations))
			for i, p := range r.Destinations {
				dests[i] = p.Addr().String()
			}
			sr := route("new", r.Group, "10.116.0.12", t0.Add(time.Hour), dests...)
			b.ReportAllocs()
			for b.Loop() {
				if res := StaticRoute(tutorialConfig(), others, sr, nil); len(res.Errors) > 0 {
					b.Fatal(res.Errors)
				}
			}
		})
	}
}

func BenchmarkIndexPut(b *testing.B) {
	others := existing(10_000)
	r, _ := others.Get("r00001")
	b.ReportAllocs()
	for b.Loop() {
		others.Put(r)
	}
}
