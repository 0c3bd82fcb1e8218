package datapath

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Lost is the table WatchKernel reports for a link change, or when events
// were lost (the socket overflowed): anything may have changed.
const Lost = -1

// RuleChanged is what WatchKernel reports for an ip rule added or deleted:
// Apply lists the rules each time, so a rule change needs a reconcile but
// no fresh dump of the routes.
const RuleChanged = -2

// WatchKernel calls changed for every route change (with the route's
// table), rule change (RuleChanged), link or nexthop change (Lost) in the
// network namespace ns (netns.None(): the caller's) until ctx ends, except
// the changes made through a netlink socket whose port ours recognises
// (nil: none). It reads each message's type and, of a route, its table
// alone (parseRoute stops at nothing more costly): a swap of 10,000
// prefixes is 40,000 route events, which vishvananda/netlink's
// subscription would decode into as many Route values. Nexthops matter
// because deleting one deletes every route through it without a route
// event.
//
// The kernel sends each change to the subscribers with the port of the
// socket that asked for it (0 for its own changes, such as routes going
// with their link), so a change that Kernel.Apply made itself, and
// already remembers, is told apart from drift without decoding it: after
// a switch, its echo no longer costs another reconcile and a fresh read
// of every table.
func WatchKernel(ctx context.Context, ns netns.NsHandle, ours func(port uint32) bool, changed func(table int)) error {
	sock, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_LINK, unix.RTNLGRP_NEXTHOP)
	if err != nil {
		return fmt.Errorf("netlink subscribe: %w", err)
	}
	defer sock.Close()
	return receive(ctx, sock, func(buf []byte) {
		if buf == nil {
			changed(Lost)
			return
		}
		eachEvent(buf, ours, changed)
	})
}

// WatchFirewall calls changed when another program changes the nftables
// table named table in the network namespace ns (netns.None(): the
// caller's), or when events were lost, until ctx ends. A change is ours
// when the transaction that made it was committed by a process with our
// command name (the kernel names it in the transaction's generation
// message): the process id it gives is the host's, which a process in a
// container cannot compare with its own.
func WatchFirewall(ctx context.Context, ns netns.NsHandle, table string, changed func()) error {
	self, err := commandName()
	if err != nil {
		return err
	}
	sock, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_NETFILTER, unix.NFNLGRP_NFTABLES)
	if err != nil {
		return fmt.Errorf("nftables subscribe: %w", err)
	}
	defer sock.Close()
	ev := &nftEvents{table: table, self: self}
	return receive(ctx, sock, func(buf []byte) {
		if buf == nil { // lost: whoever made the next generation, start afresh
			ev.touched = false
			changed()
			return
		}
		if ev.foreign(buf) {
			changed()
		}
	})
}

// commandName is this process's name as the kernel has it (comm).
func commandName() (string, error) {
	var b [16]byte
	if err := unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); err != nil {
		return "", fmt.Errorf("reading our command name: %w", err)
	}
	return unix.ByteSliceToString(b[:]), nil
}

// receive hands every datagram of the subscription sock to each until ctx
// ends, and nil when events were lost (the socket overflowed).
//
// It waits in Go's network poller, not in a blocking read: a goroutine in
// a blocking system call holds a thread, and each return from it (the
// read had a timeout, to notice ctx) woke the runtime's monitor thread,
// which then polled every 20 µs and slower for a while. With two such
// watchers that was about a quarter of a router's CPU under bench-scale.
func receive(ctx context.Context, sock *nl.NetlinkSocket, each func(buf []byte)) error {
	// The poller gets a copy of the descriptor (vishvananda's socket is
	// non-blocking, as the poller needs): the caller closes sock, and the
	// copy is closed here, so neither is closed twice.
	fd, err := unix.Dup(sock.GetFd())
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("netlink socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "netlink")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	// ctx ending makes the waiting read return at once.
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return !errors.Is(rerr, unix.EAGAIN) // nothing yet: wait in the poller
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return fmt.Errorf("netlink events: %w", err)
		case errors.Is(rerr, unix.EINTR):
			continue
		case errors.Is(rerr, unix.ENOBUFS):
			each(nil)
			continue
		case rerr != nil:
			return fmt.Errorf("netlink events: %w", rerr)
		}
		each(buf[:n])
	}
}

// nftEvents follows the nftables event stream: the changes of one
// transaction come first, then its generation message naming who
// committed it.
type nftEvents struct {
	table, self string
	touched     bool // a change of this transaction so far was to table
}

// foreign reads one datagram and says whether a transaction that ended in
// it changed our table and was not ours. A message it cannot read counts
// as touching our table: a needless rewrite is cheap, a missed edit is not.
func (e *nftEvents) foreign(buf []byte) bool {
	found := false
	err := eachMessage(buf, func(h nlHeader, data []byte) bool {
		if h.typ>>8 != unix.NFNL_SUBSYS_NFTABLES || len(data) < 4 {
			return true
		}
		// data: struct nfgenmsg (family, version, resource id), attributes.
		switch msg := h.typ & 0xff; msg {
		case unix.NFT_MSG_NEWGEN:
			by := ""
			if err := eachAttr(data[4:], func(t uint16, v []byte) {
				if t == unix.NFTA_GEN_PROC_NAME {
					by = unix.ByteSliceToString(v)
				}
			}); err != nil {
				by = ""
			}
			if e.touched && by != e.self {
				found = true
			}
			e.touched = false
		case unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_DELCHAIN,
			unix.NFT_MSG_NEWRULE, unix.NFT_MSG_DELRULE, unix.NFT_MSG_NEWSET, unix.NFT_MSG_DELSET,
			unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM, unix.NFT_MSG_NEWOBJ, unix.NFT_MSG_DELOBJ,
			unix.NFT_MSG_NEWFLOWTABLE, unix.NFT_MSG_DELFLOWTABLE:
			// Each names its table in attribute 1 (NFTA_TABLE_NAME,
			// NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, …).
			name, named := "", false
			err := eachAttr(data[4:], func(t uint16, v []byte) {
				if t == 1 && !named {
					name, named = unix.ByteSliceToString(v), true
				}
			})
			if err != nil || !named || name == e.table && data[0] == unix.NFPROTO_INET {
				e.touched = true
			}
		}
		return true
	})
	if err != nil {
		e.touched = true
	}
	return found
}

// eachEvent reports the route, rule and link messages in one datagram.
func eachEvent(buf []byte, ours func(port uint32) bool, changed func(table int)) {
	err := eachMessage(buf, func(h nlHeader, data []byte) bool {
		if ours != nil && ours(h.port) {
			return true // our own write, echoed: the applier knows it
		}
		switch h.typ {
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			if _, table, err := parseRoute(data); err == nil {
				changed(table)
			}
		case unix.RTM_NEWRULE, unix.RTM_DELRULE:
			changed(RuleChanged)
		case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
			changed(Lost)
		}
		return true
	})
	if err != nil {
		changed(Lost)
	}
}
