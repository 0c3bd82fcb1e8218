package group

import (
	"net/netip"
	"strings"
	"testing"
)

func TestLanes(t *testing.T) {
	a, b, c := netip.MustParseAddr("198.51.100.4"), netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.20")
	gws := []netip.Addr{a, b, c}
	home := map[netip.Addr]netip.Addr{a: a, b: b, c: c}
	for _, tc := range []struct {
		name   string
		states []State
		held   map[netip.Addr]netip.Addr
		want   string
	}{
		{"all up: every lane open, home", []State{Up, Up, Up}, home,
			"198.51.100.4 Up open; 198.51.100.12 Up open; 198.51.100.20 Up open"},
		{"B down: its lane goes to the next open one, C; new connections take A and C", []State{Up, Down, Up}, home,
			"198.51.100.4 Up open; 198.51.100.12 Down away to 198.51.100.20; 198.51.100.20 Up open"},
		{"C down: round the end, to A", []State{Up, Up, Down}, home,
			"198.51.100.4 Up open; 198.51.100.12 Up open; 198.51.100.20 Down away to 198.51.100.4"},
		{"B and C down: both to A", []State{Up, Down, Down}, home,
			"198.51.100.4 Up open; 198.51.100.12 Down away to 198.51.100.4; 198.51.100.20 Down away to 198.51.100.4"},
		{"all down: every lane open and home, failing closed", []State{Down, Down, Down}, home,
			"198.51.100.4 Down open; 198.51.100.12 Down open; 198.51.100.20 Down open"},
		{"a damped gateway keeps its connections but takes no new one", []State{Up, Damped, Up}, home,
			"198.51.100.4 Up open; 198.51.100.12 Damped; 198.51.100.20 Up open"},
		{"only damped ones: they take new connections", []State{Down, Damped, Damped}, home,
			"198.51.100.4 Down away to 198.51.100.12; 198.51.100.12 Damped open; 198.51.100.20 Damped open"},
		{"restarted during B's outage: B pending and away stays away; A and C, pending and home, take new connections",
			[]State{Pending, Pending, Pending}, map[netip.Addr]netip.Addr{a: a, b: c, c: c},
			"198.51.100.4 Pending open; 198.51.100.12 Pending away to 198.51.100.20; 198.51.100.20 Pending open"},
		{"B pending and away, A and C up: B still waits for its probes", []State{Up, Pending, Up}, map[netip.Addr]netip.Addr{a: a, b: c, c: c},
			"198.51.100.4 Up open; 198.51.100.12 Pending away to 198.51.100.20; 198.51.100.20 Up open"},
		{"B pending and away to C, which died: B comes home, C goes to A", []State{Up, Pending, Down}, map[netip.Addr]netip.Addr{a: a, b: c, c: c},
			"198.51.100.4 Up open; 198.51.100.12 Pending; 198.51.100.20 Down away to 198.51.100.4"},
		{"B back up: home again (its old connections are moved off first, by the datapath)", []State{Up, Up, Up}, map[netip.Addr]netip.Addr{a: a, b: c, c: c},
			"198.51.100.4 Up open; 198.51.100.12 Up open; 198.51.100.20 Up open"},
		{"nothing written yet, all pending: all open", []State{Pending, Pending, Pending}, nil,
			"198.51.100.4 Pending open; 198.51.100.12 Pending open; 198.51.100.20 Pending open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range Lanes(gws, tc.states, tc.held) {
				got = append(got, l.String())
			}
			if s := strings.Join(got, "; "); s != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
			}
		})
	}
}

func TestBest(t *testing.T) {
	for want, states := range map[State][]State{
		Up: {Down, Up, Pending}, Damped: {Down, Damped, Pending}, Pending: {Down, Pending}, Down: {Down, Down},
	} {
		if got := Best(states); got != want {
			t.Errorf("Best(%v) = %v, want %v", states, got, want)
		}
	}
}
