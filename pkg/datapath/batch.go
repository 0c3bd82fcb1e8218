package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// maxSend bounds one sendmsg: below the socket's default send buffer
// (208 kB), and the errors of one batch (36 bytes each with
// NETLINK_CAP_ACK) fit its receive buffer even if every message fails.
const maxSend = 64 << 10

// batcher writes and dumps routes and nexthops over a netlink socket of
// its own, encoding messages into one reused buffer: vishvananda/netlink
// has no batch call, allocates a request and a response per route, and
// 10,000 round trips cost ~130 ms. Only the last message of each sendmsg
// asks for an acknowledgement; the kernel handles a buffer's messages in
// order and reports every failure anyway, so that acknowledgement closes
// the batch.
type batcher struct {
	conn nlConn
	seq  uint32
	out  []byte // messages being built
	ends []int  // where each message in out ends
	in   []byte // receive buffer
	// timeout bounds each wait for an answer (receive): a receive that
	// waits longer fails the reconcile, which is retried, instead of
	// wedging the loop.
	timeout time.Duration
}

func newBatcher(conn nlConn) *batcher {
	return &batcher{conn: conn, seq: 1, in: make([]byte, 64<<10), timeout: netlinkTimeout}
}

// netlinkTimeout bounds one wait for the kernel's answer. A dump of 20,000
// routes answers in tens of milliseconds; a kernel that does not answer
// in 10 s will not.
const netlinkTimeout = 10 * time.Second

// send hands msgs to the kernel in one sendmsg.
func (b *batcher) send(msgs []byte) error { return b.conn.Send(msgs) }

// begin starts a message; end finishes it.
func (b *batcher) begin(typ, flags uint16) int {
	start := len(b.out)
	b.seq++
	b.out = binary.NativeEndian.AppendUint32(b.out, 0) // length, set by end
	b.out = binary.NativeEndian.AppendUint16(b.out, typ)
	b.out = binary.NativeEndian.AppendUint16(b.out, flags|unix.NLM_F_REQUEST)
	b.out = binary.NativeEndian.AppendUint32(b.out, b.seq)
	b.out = binary.NativeEndian.AppendUint32(b.out, 0) // port: the kernel's
	return start
}

func (b *batcher) end(start int) {
	binary.NativeEndian.PutUint32(b.out[start:], uint32(len(b.out)-start))
	b.ends = append(b.ends, len(b.out))
}

func (b *batcher) attr(typ uint16, v []byte) {
	b.out = binary.NativeEndian.AppendUint16(b.out, uint16(unix.SizeofRtAttr+len(v)))
	b.out = binary.NativeEndian.AppendUint16(b.out, typ)
	b.out = append(b.out, v...)
	for len(b.out)%4 != 0 {
		b.out = append(b.out, 0)
	}
}

func (b *batcher) attrU32(typ uint16, v uint32) {
	var buf [4]byte
	binary.NativeEndian.PutUint32(buf[:], v)
	b.attr(typ, buf[:])
}

// route adds one RTM_NEWROUTE (replacing a route of the same destination
// and metric) or RTM_DELROUTE for r in table. A steered route names its
// nexthop object, not the gateway; a delete names all of r, so that it
// matches r only.
func (b *batcher) route(msgType uint16, table int, r kroute) {
	b.end(b.routeAttrs(msgType, table, r))
}

// routeAttrs begins route's message, for a caller to add attributes
// before it ends it.
func (b *batcher) routeAttrs(msgType uint16, table int, r kroute) (start int) {
	flags := uint16(0)
	if msgType == unix.RTM_NEWROUTE {
		flags = unix.NLM_F_CREATE | unix.NLM_F_REPLACE
	}
	start = b.begin(msgType, flags)
	// struct rtmsg; the table goes in RTA_TABLE: ours are above 255.
	b.out = append(b.out, unix.AF_INET, r.bits, 0, 0, unix.RT_TABLE_UNSPEC, r.proto, unix.RT_SCOPE_UNIVERSE, r.typ, 0, 0, 0, 0)
	b.attr(unix.RTA_DST, r.dst[:])
	b.attrU32(unix.RTA_TABLE, uint32(table))
	if r.metric != 0 {
		b.attrU32(unix.RTA_PRIORITY, r.metric)
	}
	if r.nh != 0 {
		b.attrU32(rtaNHID, r.nh)
	}
	if r.src != [4]byte{} {
		b.attr(unix.RTA_PREFSRC, r.src[:])
	}
	return start
}

// routes writes (RTM_NEWROUTE) or deletes (RTM_DELROUTE) rs in table.
// Deleting a route that is gone counts as success.
func (b *batcher) routes(msgType uint16, table int, rs []kroute) error {
	for _, r := range rs {
		b.route(msgType, table, r)
	}
	return b.exchange(func(e unix.Errno) bool {
		return msgType == unix.RTM_DELROUTE && isGone(e)
	})
}

// exchange sends the messages built so far, maxSend bytes to a sendmsg,
// and reads the kernel's answers; errors for which ok is true count as
// success.
func (b *batcher) exchange(ok func(unix.Errno) bool) error {
	defer func() { b.out, b.ends = b.out[:0], b.ends[:0] }()
	var errs []error
	from, i := 0, 0
	for i < len(b.ends) {
		last := i
		for last+1 < len(b.ends) && b.ends[last+1]-from <= maxSend {
			last++
		}
		lastStart := from
		if last > 0 {
			lastStart = b.ends[last-1]
		}
		flags := binary.NativeEndian.Uint16(b.out[lastStart+6:])
		binary.NativeEndian.PutUint16(b.out[lastStart+6:], flags|unix.NLM_F_ACK)
		lastSeq := binary.NativeEndian.Uint32(b.out[lastStart+8:])
		if err := b.send(b.out[from:b.ends[last]]); err != nil {
			return fmt.Errorf("sending %d netlink messages: %w", last-i+1, err)
		}
		for done := false; !done; {
			err := b.receive(func(h nlHeader, data []byte) bool {
				if h.typ != unix.NLMSG_ERROR || len(data) < 4 {
					return true
				}
				if code := int32(binary.NativeEndian.Uint32(data)); code != 0 && !ok(unix.Errno(-code)) {
					errs = append(errs, unix.Errno(-code))
				}
				if h.seq == lastSeq {
					done = true
				}
				return true
			})
			if err != nil {
				return fmt.Errorf("reading netlink acknowledgements: %w", err)
			}
		}
		from, i = b.ends[last], last+1
	}
	return errors.Join(errs...)
}

// receive reads one datagram and hands each message in it to each (see
// eachMessage). b.timeout bounds the wait: a kernel that does not answer
// fails the exchange instead of wedging the router.
func (b *batcher) receive(each func(h nlHeader, data []byte) bool) error {
	n, truncated, err := b.conn.Receive(b.in, b.timeout)
	if err != nil {
		return err
	}
	if truncated {
		return fmt.Errorf("netlink message larger than %d bytes", len(b.in))
	}
	return eachMessage(b.in[:n], each)
}

// nlHeader is what a handler needs of a netlink message's header.
type nlHeader struct {
	typ, flags uint16
	seq, port  uint32
}

// eachMessage hands each netlink message in buf (a datagram) to each,
// until each returns false.
func eachMessage(buf []byte, each func(h nlHeader, data []byte) bool) error {
	for len(buf) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(buf))
		if l < unix.NLMSG_HDRLEN || l > len(buf) {
			return fmt.Errorf("malformed netlink message (length %d of %d)", l, len(buf))
		}
		h := nlHeader{typ: binary.NativeEndian.Uint16(buf[4:]), flags: binary.NativeEndian.Uint16(buf[6:]), seq: binary.NativeEndian.Uint32(buf[8:]), port: binary.NativeEndian.Uint32(buf[12:])}
		if !each(h, buf[unix.NLMSG_HDRLEN:l]) {
			return nil
		}
		buf = buf[min(len(buf), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
	}
	return nil
}

// maxDumpTries bounds how often an interrupted dump is asked again.
const maxDumpTries = 5

// errDumpInterrupted: the kernel marked a dump NLM_F_DUMP_INTR (what it
// listed changed while it was read), every try.
var errDumpInterrupted = errors.New("the dump was interrupted by changes every time")

// dump sends the request that request builds (one NLM_F_DUMP) and hands
// each answer's payload to each. A dump the kernel marks interrupted
// (NLM_F_DUMP_INTR: the list changed while it was read, so entries may be
// missing or doubled) is not taken as complete: reset undoes what each
// collected, and the dump is asked again, up to maxDumpTries times.
func (b *batcher) dump(request, reset func(), each func(data []byte) error) error {
	for try := 1; ; try++ {
		request()
		interrupted, err := b.dumpOnce(each)
		if err != nil || !interrupted {
			return err
		}
		if try == maxDumpTries {
			return fmt.Errorf("%w (%d tries)", errDumpInterrupted, try)
		}
		reset()
	}
}

// dumpOnce sends the request built so far and reads its answers; it says
// whether the kernel marked any of them interrupted.
func (b *batcher) dumpOnce(each func(data []byte) error) (interrupted bool, _ error) {
	defer func() { b.out, b.ends = b.out[:0], b.ends[:0] }()
	seq := b.seq
	if err := b.send(b.out); err != nil {
		return false, err
	}
	var failed error
	for done := false; !done; {
		err := b.receive(func(h nlHeader, data []byte) bool {
			if h.seq != seq {
				return true
			}
			if h.flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch h.typ {
			case unix.NLMSG_DONE:
				done = true
				return false
			case unix.NLMSG_ERROR:
				done = true
				if len(data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
						failed = unix.Errno(-code)
					}
				}
				return false
			}
			if failed == nil && !interrupted {
				failed = each(data)
			}
			return true
		})
		if err != nil {
			return false, err
		}
	}
	return interrupted, failed
}

// dumpedRoute is a route as a dump gives it: our kroute, and what ReadNode
// needs of the main table's routes.
type dumpedRoute struct {
	kroute
	scope     uint8
	gw        netip.Addr
	oif       int
	multipath bool
}

// dumpRoutes lists the IPv4 routes of table (sorted).
func (b *batcher) dumpRoutes(table int) ([]kroute, error) {
	var out []kroute
	err := b.eachRoute(table, func() { out = out[:0] }, func(r dumpedRoute) { out = append(out, r.kroute) })
	return sortRoutes(out), err
}

// eachRoute hands each IPv4 route of table to each; reset undoes what
// each collected when the dump must be read again. The kernel filters by
// table (NETLINK_GET_STRICT_CHK); without it, the other tables' routes are
// skipped here.
func (b *batcher) eachRoute(table int, reset func(), each func(dumpedRoute)) error {
	request := func() {
		start := b.begin(unix.RTM_GETROUTE, unix.NLM_F_DUMP)
		b.out = append(b.out, unix.AF_INET, 0, 0, 0, unix.RT_TABLE_UNSPEC, 0, 0, 0, 0, 0, 0, 0)
		b.attrU32(unix.RTA_TABLE, uint32(table))
		b.end(start)
	}
	err := b.dump(request, reset, func(data []byte) error {
		r, t, err := parseRoute(data)
		if err == nil && t == table {
			each(r)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("listing table %d: %w", table, err)
	}
	return nil
}

// parseRoute reads a route message's payload (struct rtmsg and its
// attributes).
func parseRoute(data []byte) (dumpedRoute, int, error) {
	if len(data) < unix.SizeofRtMsg {
		return dumpedRoute{}, 0, fmt.Errorf("route message of %d bytes", len(data))
	}
	r := dumpedRoute{kroute: kroute{bits: data[1], proto: data[5], typ: data[7]}, scope: data[6]}
	table := uint32(data[4])
	err := eachAttr(data[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		switch {
		case typ == unix.RTA_TABLE && len(v) == 4:
			table = binary.NativeEndian.Uint32(v)
		case typ == unix.RTA_DST && len(v) == 4:
			r.dst = [4]byte(v)
		case typ == unix.RTA_PRIORITY && len(v) == 4:
			r.metric = binary.NativeEndian.Uint32(v)
		case typ == rtaNHID && len(v) == 4:
			r.nh = binary.NativeEndian.Uint32(v)
		case typ == unix.RTA_PREFSRC && len(v) == 4:
			r.src = [4]byte(v)
		case typ == unix.RTA_GATEWAY && len(v) == 4:
			r.gw = netip.AddrFrom4([4]byte(v))
		case typ == unix.RTA_OIF && len(v) == 4:
			r.oif = int(binary.NativeEndian.Uint32(v))
		case typ == unix.RTA_MULTIPATH:
			r.multipath = true
		}
	})
	return r, int(table), err
}

// eachAttr hands each netlink attribute in buf to each.
func eachAttr(buf []byte, each func(typ uint16, v []byte)) error {
	for len(buf) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(buf))
		if l < unix.SizeofRtAttr || l > len(buf) {
			return fmt.Errorf("malformed netlink attribute (length %d of %d)", l, len(buf))
		}
		each(binary.NativeEndian.Uint16(buf[2:])&nlaTypeMask, buf[unix.SizeofRtAttr:l])
		buf = buf[min(len(buf), (l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return nil
}

// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from an
// attribute type (NLA_TYPE_MASK, not in x/sys/unix).
const nlaTypeMask = 0x3fff
