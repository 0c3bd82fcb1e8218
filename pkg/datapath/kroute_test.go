package datapath

import (
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func kr(prefix string, typ uint8, metric, nh uint32) kroute {
	p := netip.MustParsePrefix(prefix)
	return kroute{dst: p.Addr().As4(), bits: uint8(p.Bits()), typ: typ, proto: 146, metric: metric, nh: nh}
}

func TestDiff(t *testing.T) {
	via := func(p string, nh uint32) kroute { return kr(p, unix.RTN_UNICAST, 0, nh) }
	guard := func(p string) kroute { return kr(p, unix.RTN_UNREACHABLE, guardMetric, 0) }
	throw := func(p string) kroute { return kr(p, unix.RTN_THROW, 0, 0) }
	unreachable := func(p string) kroute { return kr(p, unix.RTN_UNREACHABLE, 0, 0) }
	for name, tc := range map[string]struct {
		have, want         []kroute
		clear, write, dels []kroute
	}{
		"equal tables need nothing": {
			have: []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
			want: []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
		},
		"a new destination is written with its guard": {
			have:  []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
			want:  []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32"), via("198.19.0.0/16", 1), guard("198.19.0.0/16")},
			write: []kroute{via("198.19.0.0/16", 1), guard("198.19.0.0/16")},
		},
		"a destination that goes is deleted with its guard": {
			have: []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32"), throw("198.51.100.0/24")},
			want: []kroute{throw("198.51.100.0/24")},
			dels: []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
		},
		"a destination that moves to another group is only rewritten": {
			have:  []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
			want:  []kroute{via("192.0.2.7/32", 2), guard("192.0.2.7/32")},
			write: []kroute{via("192.0.2.7/32", 2)},
		},
		"a group whose gateway goes off-link replaces its routes and drops their guards": {
			have:  []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
			want:  []kroute{unreachable("192.0.2.7/32")},
			write: []kroute{unreachable("192.0.2.7/32")},
			dels:  []kroute{guard("192.0.2.7/32")},
		},
		"a destination held twice is cleared before it is written": {
			have:  []kroute{via("192.0.2.7/32", 1), via("192.0.2.7/32", 9), guard("192.0.2.7/32")},
			want:  []kroute{via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
			clear: []kroute{via("192.0.2.7/32", 1), via("192.0.2.7/32", 9)},
			write: []kroute{via("192.0.2.7/32", 1)},
		},
		"an empty table gets everything": {
			want:  []kroute{throw("0.0.0.0/8"), via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
			write: []kroute{throw("0.0.0.0/8"), via("192.0.2.7/32", 1), guard("192.0.2.7/32")},
		},
		"a prefix and its supernet are different destinations": {
			have:  []kroute{via("192.0.2.0/24", 1)},
			want:  []kroute{via("192.0.2.0/25", 1)},
			write: []kroute{via("192.0.2.0/25", 1)},
			dels:  []kroute{via("192.0.2.0/24", 1)},
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := diff(sortRoutes(slices.Clone(tc.have)), sortRoutes(slices.Clone(tc.want)))
			if !slices.Equal(c.clear, tc.clear) || !slices.Equal(c.write, tc.write) || !slices.Equal(c.del, tc.dels) {
				t.Errorf("diff = clear %v write %v del %v\nwant clear %v write %v del %v", c.clear, c.write, c.del, tc.clear, tc.write, tc.dels)
			}
		})
	}
}

// Applying a diff as the kernel would (a write replaces the route of the
// same destination and metric) gives the wanted table, for random tables.
func TestDiffReachesWant(t *testing.T) {
	pool := []kroute{
		kr("192.0.2.7/32", unix.RTN_UNICAST, 0, 1), kr("192.0.2.7/32", unix.RTN_UNICAST, 0, 2),
		kr("192.0.2.7/32", unix.RTN_UNREACHABLE, guardMetric, 0), kr("192.0.2.7/32", unix.RTN_UNREACHABLE, 0, 0),
		kr("192.0.2.0/24", unix.RTN_THROW, 0, 0), kr("198.19.0.0/16", unix.RTN_UNICAST, 0, 1),
		kr("198.19.0.0/16", unix.RTN_UNREACHABLE, guardMetric, 0), kr("0.0.0.0/0", unix.RTN_UNICAST, 0, 1),
	}
	pick := func(mask int, unique bool) []kroute {
		var out []kroute
		for i, r := range pool {
			if mask&(1<<i) != 0 && !(unique && slices.ContainsFunc(out, func(o kroute) bool { return o.keyCompare(r) == 0 })) {
				out = append(out, r)
			}
		}
		return sortRoutes(out)
	}
	for hm := range 1 << len(pool) {
		for wm := 0; wm < 1<<len(pool); wm += 7 {
			have, want := pick(hm, false), pick(wm, true)
			c := diff(have, want)
			table := slices.Clone(have)
			table = slices.DeleteFunc(table, func(r kroute) bool { return slices.Contains(c.clear, r) })
			for _, w := range c.write {
				if i := slices.IndexFunc(table, func(r kroute) bool { return r.keyCompare(w) == 0 }); i >= 0 {
					table[i] = w
				} else {
					table = append(table, w)
				}
			}
			table = slices.DeleteFunc(table, func(r kroute) bool { return slices.Contains(c.del, r) })
			if got := sortRoutes(table); !slices.Equal(got, want) {
				t.Fatalf("have %v, want %v: diff %+v gives %v", have, want, c, got)
			}
		}
	}
}

// A route written by the batcher reads back the same, for every kind.
func TestRouteMessageRoundTrip(t *testing.T) {
	b := &batcher{}
	for _, r := range []kroute{
		{dst: [4]byte{192, 0, 2, 7}, bits: 32, typ: unix.RTN_UNICAST, proto: 146, nh: 0x5e123456, src: [4]byte{198, 51, 100, 10}},
		{dst: [4]byte{192, 0, 2, 7}, bits: 32, typ: unix.RTN_UNREACHABLE, proto: 146, metric: guardMetric},
		{bits: 0, typ: unix.RTN_THROW, proto: 146},
	} {
		b.route(unix.RTM_NEWROUTE, 52101, r)
		msg := b.out[unix.NLMSG_HDRLEN:b.ends[0]]
		got, table, err := parseRoute(msg)
		if err != nil || got.kroute != r || table != 52101 {
			t.Errorf("%+v: read back %+v in table %d (%v)", r, got.kroute, table, err)
		}
		b.out, b.ends = b.out[:0], b.ends[:0]
	}
}

// Whatever the kernel's bytes, reading them fails or succeeds, and never
// panics.
func FuzzParseRoute(f *testing.F) {
	b := &batcher{}
	b.route(unix.RTM_NEWROUTE, 52101, kroute{dst: [4]byte{192, 0, 2, 7}, bits: 32, typ: unix.RTN_UNICAST, proto: 146, nh: 7, src: [4]byte{198, 51, 100, 10}})
	f.Add(b.out[unix.NLMSG_HDRLEN:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = parseRoute(data)
	})
}

func FuzzEachEvent(f *testing.F) {
	b := &batcher{}
	b.route(unix.RTM_NEWROUTE, 52101, kroute{dst: [4]byte{192, 0, 2, 7}, bits: 32, typ: unix.RTN_THROW, proto: 146})
	b.route(unix.RTM_DELROUTE, 254, kroute{bits: 24, typ: unix.RTN_UNICAST})
	f.Add(b.out)
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		eachEvent(data, func(uint32) bool { return false }, func(int) {})
	})
}
