package group

import (
	"testing"
	"time"
)

func TestDraining(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	type m struct {
		name  string
		at    time.Duration
		up    bool
		drain time.Duration
	}
	key := func(x m) Key { return Key{Created: t0.Add(x.at), Name: x.name} }
	rank := func(x m) int {
		if x.up {
			return 3
		}
		return 0
	}
	for _, tc := range []struct {
		name   string
		ms     []m
		active int
		now    time.Duration
		want   string
	}{
		{"the old member drains until the new one's drain ends", []m{{"old", 0, true, 0}, {"new", time.Minute, true, 30 * time.Second}}, 1, 70 * time.Second, "old"},
		{"past the drain: none", []m{{"old", 0, true, 0}, {"new", time.Minute, true, 30 * time.Second}}, 1, 90 * time.Second, ""},
		{"no drain asked: none", []m{{"old", 0, true, 0}, {"new", time.Minute, true, 0}}, 1, 70 * time.Second, ""},
		{"a dead old member is never drained to", []m{{"old", 0, false, 0}, {"new", time.Minute, true, 30 * time.Second}}, 1, 70 * time.Second, ""},
		{"an older fallback carrying after the newest died drains nothing", []m{{"old", 0, true, 0}, {"new", time.Minute, false, 30 * time.Second}}, 0, 70 * time.Second, ""},
		{"three members: the one the newest replaced drains", []m{{"a", 0, true, 0}, {"b", time.Minute, true, 0}, {"c", 2 * time.Minute, true, time.Minute}}, 2, 150 * time.Second, "b"},
		{"three members, the middle one dead: the oldest drains", []m{{"a", 0, true, 0}, {"b", time.Minute, false, 0}, {"c", 2 * time.Minute, true, time.Minute}}, 2, 150 * time.Second, "a"},
	} {
		i, until := Draining(tc.ms, tc.active, key, rank, func(x m) bool { return x.up }, func(x m) time.Duration { return x.drain }, t0.Add(tc.now))
		got := ""
		if i >= 0 {
			got = tc.ms[i].name
			if want := key(tc.ms[tc.active]).Created.Add(tc.ms[tc.active].drain); !until.Equal(want) {
				t.Errorf("%s: until %s, want %s", tc.name, until, want)
			}
		}
		if got != tc.want {
			t.Errorf("%s: draining %q, want %q", tc.name, got, tc.want)
		}
	}
}
