package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sentMessage is one netlink message a memConn was given.
type sentMessage struct {
	nlHeader
	payload []byte
}

// memConn is a kernel in memory behind the batcher's seam: it records
// every sendmsg, answers an error (errno) or an acknowledgement where
// asked, and a dump with the datagrams dumps gives it, then NLMSG_DONE.
type memConn struct {
	sends   [][]sentMessage
	queue   [][]byte
	fail    func(i int, m sentMessage) unix.Errno // i counts every message sent
	dumps   [][][]byte                            // per dump request: its answer's datagrams
	sendErr error
	count   int
}

func nlMessage(typ, flags uint16, seq uint32, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, payload...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func nlError(seq uint32, errno unix.Errno) []byte {
	return nlMessage(unix.NLMSG_ERROR, 0, seq, binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno))))
}

func (c *memConn) Send(msgs []byte) error {
	if c.sendErr != nil {
		return c.sendErr
	}
	var sent []sentMessage
	if err := eachMessage(msgs, func(h nlHeader, data []byte) bool {
		sent = append(sent, sentMessage{h, slices.Clone(data)})
		return true
	}); err != nil {
		return err
	}
	c.sends = append(c.sends, sent)
	for _, m := range sent {
		errno := unix.Errno(0)
		if c.fail != nil {
			errno = c.fail(c.count, m)
		}
		c.count++
		switch {
		case m.flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP:
			if len(c.dumps) == 0 {
				return errors.New("memConn: a dump nobody prepared")
			}
			parts := c.dumps[0]
			c.dumps = c.dumps[1:]
			c.queue = append(c.queue, parts...)
			c.queue = append(c.queue, nlMessage(unix.NLMSG_DONE, 0, m.seq, []byte{0, 0, 0, 0}))
		case errno != 0 || m.flags&unix.NLM_F_ACK != 0:
			c.queue = append(c.queue, nlError(m.seq, errno))
		}
	}
	return nil
}

func (c *memConn) Receive(p []byte, timeout time.Duration) (int, bool, error) {
	if len(c.queue) == 0 {
		return 0, false, fmt.Errorf("no answer from the kernel within %s", timeout)
	}
	d := c.queue[0]
	c.queue = c.queue[1:]
	return copy(p, d), len(d) > len(p), nil
}

func (c *memConn) Close() {}

// testRoutes are n distinct /32 routes via nexthop 7.
func testRoutes(n int) []kroute {
	rs := make([]kroute, n)
	for i := range rs {
		rs[i] = kroute{dst: [4]byte{198, 18, byte(i >> 8), byte(i)}, bits: 32, proto: 146, typ: unix.RTN_UNICAST, nh: 7}
	}
	return rs
}

// 10,000 routes go in sendmsgs of at most maxSend bytes, each asking an
// acknowledgement for its last message only, every message once and in
// order; what was sent decodes to the routes given.
func TestBatcherChunksAndAcksTheLastMessageOfEachSend(t *testing.T) {
	c := &memConn{}
	b := newBatcher(c)
	rs := testRoutes(10_000)
	if err := b.routes(unix.RTM_NEWROUTE, 52101, rs); err != nil {
		t.Fatal(err)
	}
	var got []kroute
	lastSeq := uint32(0)
	for i, send := range c.sends {
		size := 0
		for j, m := range send {
			size += unix.NLMSG_HDRLEN + len(m.payload)
			if acked := m.flags&unix.NLM_F_ACK != 0; acked != (j == len(send)-1) {
				t.Fatalf("send %d message %d of %d: ack %t", i, j, len(send), acked)
			}
			if m.typ != unix.RTM_NEWROUTE || m.flags&(unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_REQUEST) != unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_REQUEST {
				t.Fatalf("send %d message %d: type %d flags %#x", i, j, m.typ, m.flags)
			}
			if m.seq <= lastSeq {
				t.Fatalf("send %d message %d: sequence %d after %d", i, j, m.seq, lastSeq)
			}
			lastSeq = m.seq
			r, table, err := parseRoute(m.payload)
			if err != nil || table != 52101 {
				t.Fatalf("send %d message %d: table %d, %v", i, j, table, err)
			}
			got = append(got, r.kroute)
		}
		if size > maxSend {
			t.Fatalf("send %d: %d bytes, more than %d", i, size, maxSend)
		}
	}
	if !slices.Equal(got, rs) {
		t.Fatalf("sent %d routes, not the %d given, in order", len(got), len(rs))
	}
	if want := (len(rs)*(unix.NLMSG_HDRLEN+len(c.sends[0][0].payload)) + maxSend - 1) / maxSend; len(c.sends) != want {
		t.Fatalf("%d sendmsgs, want %d", len(c.sends), want)
	}
	t.Logf("%d routes in %d sendmsgs", len(rs), len(c.sends))
}

// Every failed message is reported, in any send, not only the first;
// a delete of what is gone, and a rule that exists, count as done; a
// failed sendmsg names how many messages it carried; the next exchange
// starts clean.
func TestBatcherReportsEveryFailure(t *testing.T) {
	c := &memConn{fail: func(i int, _ sentMessage) unix.Errno {
		switch i {
		case 3:
			return unix.EINVAL
		case 7000:
			return unix.ENODEV
		}
		return 0
	}}
	b := newBatcher(c)
	err := b.routes(unix.RTM_NEWROUTE, 52101, testRoutes(10_000))
	if !errors.Is(err, unix.EINVAL) || !errors.Is(err, unix.ENODEV) {
		t.Fatalf("two failed messages: %v, want both", err)
	}

	c = &memConn{fail: func(i int, _ sentMessage) unix.Errno { return []unix.Errno{unix.ENOENT, unix.ESRCH, 0}[i%3] }}
	b = newBatcher(c)
	if err := b.routes(unix.RTM_DELROUTE, 52101, testRoutes(30)); err != nil {
		t.Fatalf("deleting routes that are gone: %v", err)
	}
	c.fail = func(int, sentMessage) unix.Errno { return unix.EEXIST }
	if err := b.rules(unix.RTM_NEWRULE, ruleSpec{priority: 100, table: 52101}); err != nil {
		t.Fatalf("adding a rule that exists: %v", err)
	}
	if err := b.routes(unix.RTM_NEWROUTE, 52101, testRoutes(1)); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("a route add that fails with EEXIST: %v", err)
	}

	c.fail, c.sendErr = nil, unix.ENOBUFS
	if err := b.routes(unix.RTM_NEWROUTE, 52101, testRoutes(5)); err == nil || !strings.Contains(err.Error(), "sending 5 netlink messages") {
		t.Fatalf("a failed sendmsg: %v", err)
	}
	c.sendErr = nil
	if err := b.routes(unix.RTM_NEWROUTE, 52101, testRoutes(2)); err != nil || len(c.sends[len(c.sends)-1]) != 2 {
		t.Fatalf("the exchange after a failed one: %v, %d messages sent", err, len(c.sends[len(c.sends)-1]))
	}
}

// A kernel that does not answer fails the exchange, naming the wait.
func TestBatcherWithoutAnAnswer(t *testing.T) {
	c := &memConn{}
	b := newBatcher(c)
	b.timeout = time.Second
	b.route(unix.RTM_NEWROUTE, 52101, testRoutes(1)[0])
	if err := b.send(b.out); err != nil {
		t.Fatal(err)
	}
	c.queue = nil // the acknowledgement never comes
	b.out, b.ends = b.out[:0], b.ends[:0]
	if err := b.receive(func(nlHeader, []byte) bool { return true }); err == nil || !strings.Contains(err.Error(), "no answer from the kernel within 1s") {
		t.Fatalf("no answer: %v", err)
	}
}

// routeDump is a dump's answer of routes rs in table, one datagram per
// message, with flags on each.
func routeDump(t *testing.T, table int, rs []kroute, flags uint16) [][]byte {
	t.Helper()
	enc := newBatcher(&memConn{})
	var out [][]byte
	for _, r := range rs {
		enc.route(unix.RTM_NEWROUTE, table, r)
		m := enc.out[enc.ends[0]-int(binary.NativeEndian.Uint32(enc.out)) : enc.ends[0]]
		out = append(out, nlMessage(unix.RTM_NEWROUTE, flags|unix.NLM_F_MULTI, enc.seq, m[unix.NLMSG_HDRLEN:]))
		enc.out, enc.ends = enc.out[:0], enc.ends[:0]
	}
	return out
}

// A dump reads every part of the answer; one the kernel marks
// interrupted is asked again and what it gave dropped; one interrupted
// every time fails; a malformed or truncated answer, or an error in
// place of the dump, fails and is never taken as the table.
func TestBatcherDumps(t *testing.T) {
	rs := testRoutes(300)
	c := &memConn{}
	b := newBatcher(c)
	// The sequence numbers the answers carry: the dump's own.
	seqOf := func() uint32 { return b.seq + 1 }
	withSeq := func(parts [][]byte, seq uint32) [][]byte {
		for _, p := range parts {
			binary.NativeEndian.PutUint32(p[8:], seq)
		}
		return parts
	}
	c.dumps = [][][]byte{withSeq(routeDump(t, 52101, rs, 0), seqOf())}
	got, err := b.dumpRoutes(52101)
	if err != nil || !slices.Equal(got, rs) {
		t.Fatalf("a dump of %d routes: %d, %v", len(rs), len(got), err)
	}

	// Interrupted once: read again, the first answer dropped.
	c.dumps = [][][]byte{withSeq(routeDump(t, 52101, rs[:10], unix.NLM_F_DUMP_INTR), seqOf()), withSeq(routeDump(t, 52101, rs, 0), seqOf()+1)}
	if got, err := b.dumpRoutes(52101); err != nil || !slices.Equal(got, rs) {
		t.Fatalf("after an interrupted dump: %d routes, %v", len(got), err)
	}
	// Interrupted every time.
	c.dumps = nil
	for i := range maxDumpTries {
		c.dumps = append(c.dumps, withSeq(routeDump(t, 52101, rs[:3], unix.NLM_F_DUMP_INTR), seqOf()+uint32(i)))
	}
	if _, err := b.dumpRoutes(52101); !errors.Is(err, errDumpInterrupted) {
		t.Fatalf("interrupted every time: %v", err)
	}

	// Malformed: a length past the datagram.
	bad := withSeq(routeDump(t, 52101, rs[:1], 0), seqOf())
	binary.NativeEndian.PutUint32(bad[0], 4096)
	c.dumps = [][][]byte{bad}
	if _, err := b.dumpRoutes(52101); err == nil || !strings.Contains(err.Error(), "malformed netlink message") {
		t.Fatalf("a malformed answer: %v", err)
	}
	c.queue = nil

	// Larger than the receive buffer.
	big := withSeq(routeDump(t, 52101, rs[:1], 0), seqOf())
	big[0] = append(big[0], make([]byte, len(b.in))...)
	c.dumps = [][][]byte{big}
	if _, err := b.dumpRoutes(52101); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a truncated answer: %v", err)
	}
	c.queue = nil

	// An error in place of the dump.
	c.dumps = [][][]byte{{nlError(seqOf(), unix.EOPNOTSUPP)}}
	if _, err := b.dumpRoutes(52101); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("an error for the dump: %v", err)
	}
}

// Rules are dumped through the batcher's socket too: the rules the
// batcher writes read back as they were written, in the kernel's order,
// IPv6 ones left out.
func TestBatcherDumpsRules(t *testing.T) {
	mask := uint32(0x3f80)
	want := []ruleSpec{{priority: 29990, table: 52201, mark: 0x2080, mask: &mask}, {priority: 30000, table: 254, mark: 0x80, mask: &mask}, {priority: 30010, table: 52101}}
	enc := newBatcher(&memConn{})
	c := &memConn{}
	b := newBatcher(c)
	var answer [][]byte
	for _, r := range want {
		enc.out, enc.ends = enc.out[:0], enc.ends[:0]
		if err := enc.rules(unix.RTM_NEWRULE, r); err != nil {
			t.Fatal(err)
		}
		answer = append(answer, nlMessage(unix.RTM_NEWRULE, unix.NLM_F_MULTI, b.seq+1, enc.conn.(*memConn).lastPayload()))
	}
	v6 := append([]byte{unix.AF_INET6}, make([]byte, fibRuleHdrLen-1)...)
	answer = append(answer, nlMessage(unix.RTM_NEWRULE, unix.NLM_F_MULTI, b.seq+1, v6))
	c.dumps = [][][]byte{answer}
	got, err := b.dumpRules()
	if err != nil || len(got) != len(want) {
		t.Fatalf("dumped %+v, %v; want %+v", got, err, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.priority != w.priority || g.table != w.table || g.mark != w.mark || (g.mask == nil) != (w.mask == nil) || g.mask != nil && *g.mask != *w.mask {
			t.Errorf("rule %d: %+v, want %+v", i, g, w)
		}
	}
	if _, _, err := parseRule([]byte{2, 0, 0}); err == nil {
		t.Error("a rule message of 3 bytes parsed")
	}
}

// lastPayload is the payload of the last message c was sent.
func (c *memConn) lastPayload() []byte {
	last := c.sends[len(c.sends)-1]
	return last[len(last)-1].payload
}

// Whatever the kernel's bytes, reading a rule fails or succeeds, and
// never panics.
func FuzzParseRule(f *testing.F) {
	c := &memConn{}
	mask := uint32(0x3f80)
	if err := newBatcher(c).rules(unix.RTM_NEWRULE, ruleSpec{priority: 29990, table: 52201, mark: 0x2080, mask: &mask}); err != nil {
		f.Fatal(err)
	}
	f.Add(c.lastPayload())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = parseRule(data)
	})
}
