package group

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/staticroute/staticroute/api/v1"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestNewestCarriesTheGroupWhateverTheOrder(t *testing.T) {
	ms := []Key{
		{t0, "primary"},
		{t0.Add(time.Minute), "alpha"},
		{t0.Add(time.Minute), "zeta"}, // the same second: the greater name
		{t0.Add(-time.Hour), "ancient"},
	}
	id := func(k Key) Key { return k }
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		var shuffled []Key
		for _, i := range order {
			shuffled = append(shuffled, ms[i])
		}
		if a := shuffled[Active(shuffled, id, nil)]; a.Name != "zeta" {
			t.Errorf("order %v: active %s, want zeta", order, a.Name)
		}
		if o := shuffled[Oldest(shuffled, id)]; o.Name != "ancient" {
			t.Errorf("order %v: oldest %s, want ancient", order, o.Name)
		}
		Sort(shuffled, id)
		var names []string
		for _, k := range shuffled {
			names = append(names, k.Name)
		}
		if got := names[0] + " " + names[1] + " " + names[2] + " " + names[3]; got != "ancient primary alpha zeta" {
			t.Errorf("order %v: sorted %s", order, got)
		}
	}
	if Active([]Key{}, id, nil) != -1 || Oldest([]Key(nil), id) != -1 {
		t.Error("an empty group has no active or oldest member")
	}
}

// With health: the newest member that is up; none up: the newest.
func TestActiveSkipsMembersThatAreDown(t *testing.T) {
	ms := []Key{{t0, "a"}, {t0.Add(time.Minute), "b"}, {t0.Add(2 * time.Minute), "c"}}
	id := func(k Key) Key { return k }
	for _, tc := range []struct {
		down string
		want string
	}{
		{"", "c"}, {"c", "b"}, {"bc", "a"}, {"b", "c"}, {"abc", "c"}, {"a", "c"},
	} {
		rank := func(k Key) int {
			if strings.Contains(tc.down, k.Name) {
				return Rank(Down, true)
			}
			return Rank(Up, false)
		}
		if got := ms[Active(ms, id, rank)].Name; got != tc.want {
			t.Errorf("down %q: active %s, want %s", tc.down, got, tc.want)
		}
	}
}

// Each member's state as a letter (U up, D down, P pending, d damped) and
// whether its gateway carries the group now (upper case P: pending and
// carrying): which member carries the group.
func TestActiveRanksPendingAndDampedMembers(t *testing.T) {
	ms := []Key{{t0, "a"}, {t0.Add(time.Minute), "b"}, {t0.Add(2 * time.Minute), "c"}}
	id := func(k Key) Key { return k }
	for states, want := range map[string]string{
		"UUP": "b", // a new member on an unproven gateway takes nothing over
		"UUU": "c",
		"PPP": "c", // nothing carried yet (a new group): the newest
		"pDP": "a", // a restart: the kernel's choice (a) is kept while pending
		"DDp": "c", // all down but a pending one: it may answer; it loses nothing more
		"DUd": "b", // a damped member yields to one that is up
		"DDd": "c", // and carries when nothing else is up
		"dPD": "a", // damped beats pending beats down
		"DDD": "c", // fail closed on the newest
		"PUD": "b",
	} {
		rank := func(k Key) int {
			switch states[k.Name[0]-'a'] {
			case 'U':
				return Rank(Up, false)
			case 'D':
				return Rank(Down, false)
			case 'd':
				return Rank(Damped, false)
			case 'p':
				return Rank(Pending, true)
			}
			return Rank(Pending, false)
		}
		if got := ms[Active(ms, id, rank)].Name; got != want {
			t.Errorf("%s: active %s, want %s", states, got, want)
		}
	}
}

func TestSelects(t *testing.T) {
	sr := &v1.StaticRoute{}
	if ok, err := Selects(sr, nil); !ok || err != nil {
		t.Errorf("no selector: %v %v, want every node", ok, err)
	}
	sr.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "egress"}}
	if ok, err := Selects(sr, map[string]string{"pool": "egress"}); !ok || err != nil {
		t.Errorf("matching: %v %v", ok, err)
	}
	if ok, err := Selects(sr, map[string]string{"pool": "web"}); ok || err != nil {
		t.Errorf("not matching: %v %v", ok, err)
	}
	sr.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "pool", Operator: "Sometimes"}}}
	if ok, err := Selects(sr, map[string]string{"pool": "egress"}); ok || err == nil || !strings.Contains(err.Error(), "invalid nodeSelector") {
		t.Errorf("invalid: %v %v, want an error and no match", ok, err)
	}
}
