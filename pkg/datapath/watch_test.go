package datapath

import (
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/staticroute/staticroute/pkg/policy"
	"golang.org/x/sys/unix"
)

// WatchKernel reports a route change with its table, a rule change as
// RuleChanged and a link change as Lost, in the namespace it watches; it
// returns once its context ends.
func TestWatchKernel(t *testing.T) {
	n := nodeWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan int, 4096)
	done := make(chan error, 1)
	go func() {
		done <- WatchKernel(ctx, n.NS, nil, func(table int) {
			select {
			case events <- table:
			default:
			}
		})
	}()
	// expect repeats change until an event for table comes: the
	// subscription starts in its own goroutine.
	expect := func(what string, table int, change, undo []string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			n.IP(t, change...)
			n.IP(t, undo...)
			wait := time.After(200 * time.Millisecond)
			for got := false; !got; {
				select {
				case e := <-events:
					if e == table {
						return
					}
				case <-wait:
					got = true
				case <-deadline:
					t.Fatalf("%s: no event for table %d", what, table)
				}
			}
		}
	}
	expect("a route in our table", 52101,
		[]string{"route", "add", "unreachable", "192.0.2.1/32", "table", "52101"},
		[]string{"route", "del", "unreachable", "192.0.2.1/32", "table", "52101"})
	expect("a route in main", 254,
		[]string{"route", "add", "192.0.2.1/32", "via", "198.51.100.1"},
		[]string{"route", "del", "192.0.2.1/32", "via", "198.51.100.1"})
	expect("a rule", RuleChanged,
		[]string{"rule", "add", "priority", "30010", "table", "52101"},
		[]string{"rule", "del", "priority", "30010", "table", "52101"})
	expect("a nexthop (deleting one deletes its routes without a route event)", Lost,
		[]string{"nexthop", "add", "id", "99", "via", "198.51.100.1", "dev", "vpc0"},
		[]string{"nexthop", "del", "id", "99"})
	expect("a link", Lost,
		[]string{"link", "add", "w0", "type", "veth", "peer", "name", "w1"},
		[]string{"link", "del", "w0"})
	// Idle, it waits in the kernel: a spinning loop would burn a core.
	var before, after unix.Rusage
	n.Must(t, unix.Getrusage(unix.RUSAGE_SELF, &before))
	time.Sleep(1500 * time.Millisecond)
	n.Must(t, unix.Getrusage(unix.RUSAGE_SELF, &after))
	if used := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()); used > 500*time.Millisecond {
		t.Errorf("idle for 1.5 s, the process used %v of CPU", used)
	}
	returns(t, "WatchKernel", cancel, done)
}

// The changes Kernel.Apply makes (routes, nexthops and rules, a switch of
// tables among them) come back from the kernel with the port of its own
// socket: given Kernel.Ours, WatchKernel drops them, so a switch is not
// followed by a reconcile and a fresh read of every table for its own
// echo. A watcher given nil sees the same changes, as drift.
func TestWatchKernelTellsOurWritesApart(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := func(ours func(uint32) bool) chan int {
		events := make(chan int, 4096)
		go func() {
			_ = WatchKernel(ctx, n.NS, ours, func(table int) {
				select {
				case events <- table:
				default:
				}
			})
		}()
		return events
	}
	filtered, all := watch(k.Ours), watch(nil)
	// A foreign route in a table from 100 up marks a point in both
	// streams (events come in the kernel's order); each mark has a table
	// of its own, so a late one is not taken for the next.
	next := 100
	mark := func() int {
		next++
		n.IP(t, "route", "replace", "unreachable", "192.0.2.1/32", "table", strconv.Itoa(next))
		return next
	}
	isMark := func(table int) bool { return table > 100 && table < 1000 }
	// until reads events up to the mark's and returns the others.
	until := func(events chan int, mark int) []int {
		t.Helper()
		var got []int
		deadline := time.After(5 * time.Second)
		for {
			select {
			case e := <-events:
				if e == mark {
					return got
				}
				if !isMark(e) {
					got = append(got, e)
				}
			case <-deadline:
				t.Fatalf("no event for table %d after 5 s; before it: %v", mark, got)
			}
		}
	}
	// A subscription is open once any mark reaches it. Not only the mark
	// just written: one that comes after its wait leaves a mark behind in
	// the stream for each one written since, and until skips marks.
	for _, events := range []chan int{filtered, all} {
		for open := false; !open; {
			mark()
			select {
			case e := <-events:
				open = isMark(e)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	m := mark()
	until(filtered, m)
	until(all, m)

	s := states()
	for _, name := range []string{"primary", "failover", "everything", "primary"} {
		if _, err := k.Apply(s[name]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	m = mark()
	if got := until(filtered, m); len(got) > 0 {
		t.Errorf("our own applies came back as kernel events (tables): %v", got)
	}
	if got := until(all, m); !slices.Contains(got, k.Opts.Tables[0]) || !slices.Contains(got, RuleChanged) {
		t.Errorf("a watcher that takes every change saw %v from four applies: want routes of our tables and rule changes", got)
	}
	// Another program's change to our table is still drift.
	n.IP(t, "route", "add", "unreachable", "192.0.2.77/32", "table", strconv.Itoa(k.Opts.Tables[0]))
	if got := until(filtered, mark()); !slices.Contains(got, k.Opts.Tables[0]) {
		t.Errorf("ip's route in our table: events %v, want one for table %d", got, k.Opts.Tables[0])
	}
}

// returns ends a watcher's context and waits for it to return, without an
// error.
func returns(t *testing.T, what string, cancel func(), done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return after its context ended", what)
	}
}

// nftMessage is one nftables event as the kernel sends it: a netlink
// header, struct nfgenmsg (family, version, resource id) and attributes
// (type, value) in pairs.
func nftMessage(msg uint16, family byte, attrs ...any) []byte {
	body := []byte{family, 0, 0, 0}
	for i := 0; i+1 < len(attrs); i += 2 {
		v := append([]byte(attrs[i+1].(string)), 0)
		a := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
		a = binary.NativeEndian.AppendUint16(a, attrs[i].(uint16))
		a = append(a, v...)
		for len(a)%4 != 0 {
			a = append(a, 0)
		}
		body = append(body, a...)
	}
	h := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(body)))
	h = binary.NativeEndian.AppendUint16(h, unix.NFNL_SUBSYS_NFTABLES<<8|msg)
	h = append(h, make([]byte, 10)...) // flags, sequence, port id
	return append(h, body...)
}

// A transaction is foreign when it touched our table (by name, in the inet
// family) and its generation message names another program; a message it
// cannot read counts as touching our table.
func TestNftEventsForeign(t *testing.T) {
	const ours, gen = "staticroute", unix.NFT_MSG_NEWGEN
	rule := func(table string, family byte) []byte {
		return nftMessage(unix.NFT_MSG_DELRULE, family, uint16(unix.NFTA_RULE_TABLE), table, uint16(unix.NFTA_RULE_CHAIN), "out")
	}
	by := func(name string) []byte { return nftMessage(gen, 0, uint16(unix.NFTA_GEN_PROC_NAME), name) }
	join := func(ms ...[]byte) []byte { return slices.Concat(ms...) }
	for _, c := range []struct {
		name      string
		datagrams [][]byte
		want      bool
	}{
		{"nft deletes a rule of ours", [][]byte{join(rule(ours, unix.NFPROTO_INET), by("nft"))}, true},
		{"we rewrite our table", [][]byte{join(rule(ours, unix.NFPROTO_INET), by("node-router"))}, false},
		{"kube-proxy edits its own table", [][]byte{join(rule("kube-proxy", unix.NFPROTO_INET), by("kube-proxy"))}, false},
		{"a table of our name in another family", [][]byte{join(rule(ours, unix.NFPROTO_IPV4), by("nft"))}, false},
		{"a set element of ours, the transaction split over two datagrams",
			[][]byte{nftMessage(unix.NFT_MSG_NEWSETELEM, unix.NFPROTO_INET, uint16(unix.NFTA_SET_ELEM_LIST_TABLE), ours), by("nft")}, true},
		{"our table deleted", [][]byte{join(nftMessage(unix.NFT_MSG_DELTABLE, unix.NFPROTO_INET, uint16(unix.NFTA_TABLE_NAME), ours), by("nft"))}, true},
		{"a change naming no table", [][]byte{join(nftMessage(unix.NFT_MSG_NEWCHAIN, unix.NFPROTO_INET), by("nft"))}, true},
		{"a torn message", [][]byte{join(rule(ours, unix.NFPROTO_INET)[:20]), by("nft")}, true},
		{"our edit, then theirs elsewhere", [][]byte{join(rule(ours, unix.NFPROTO_INET), by("node-router"), rule("other", unix.NFPROTO_INET), by("nft"))}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &nftEvents{table: ours, self: "node-router"}
			got := false
			for _, d := range c.datagrams {
				got = e.foreign(d) || got
			}
			if got != c.want {
				t.Errorf("foreign = %v, want %v", got, c.want)
			}
		})
	}
}

// Whatever the kernel's bytes, following the nftables events never
// panics.
func FuzzNftEvents(f *testing.F) {
	f.Add(slices.Concat(nftMessage(unix.NFT_MSG_DELRULE, unix.NFPROTO_INET, uint16(unix.NFTA_RULE_TABLE), "staticroute"),
		nftMessage(unix.NFT_MSG_NEWGEN, 0, uint16(unix.NFTA_GEN_PROC_NAME), "nft")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &nftEvents{table: "staticroute", self: "node-router"}
		_ = e.foreign(data)
	})
}

// WatchFirewall reports an edit of our table by another program (nft),
// and neither another table's nor our own process's writes.
func TestWatchFirewall(t *testing.T) {
	n := nodeWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan struct{}, 64)
	done := make(chan error, 1)
	go func() {
		done <- WatchFirewall(ctx, n.NS, "staticroute", func() {
			select {
			case events <- struct{}{}:
			default:
			}
		})
	}()
	quiet := func(what string) {
		t.Helper()
		select {
		case <-events:
			t.Fatalf("%s: reported as another program's edit of our table", what)
		case <-time.After(300 * time.Millisecond):
		}
	}
	// The subscription starts in its own goroutine: repeat until seen.
	seen := false
	for deadline := time.Now().Add(5 * time.Second); !seen && time.Now().Before(deadline); {
		n.NFT(t, "table inet staticroute {\n chain c {\n }\n}\ndelete table inet staticroute\n")
		select {
		case <-events:
			seen = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !seen {
		t.Fatal("nft's edit of our table: not reported")
	}
	quiet("after the edit")
	n.NFT(t, "table inet other {\n chain c {\n }\n}\ndelete table inet other\n")
	quiet("nft's edit of another table")
	n.NFT(t, "table ip staticroute {\n chain c {\n }\n}\ndelete table ip staticroute\n")
	quiet("a table of our name in the ip family")
	fw := newFirewall(t, n)
	if _, err := fw.Apply(policy.Desired{}, nil); err != nil {
		t.Fatal(err)
	}
	quiet("our own process writing our table")
	n.Exec(t, "nft", "flush", "chain", "inet", "staticroute", "output")
	select {
	case <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("nft flushing a chain of ours: not reported")
	}
	returns(t, "WatchFirewall", cancel, done)
}
