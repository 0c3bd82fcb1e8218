package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

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
// table), rule change (RuleChanged) and link change (Lost) in the network
// namespace ns (netns.None(): the caller's) until ctx ends. It reads each
// message's type and, of a route, its table alone (parseRoute stops at
// nothing more costly): a swap of 10,000 prefixes is 40,000 route events,
// which vishvananda/netlink's subscription would decode into as many
// Route values.
func WatchKernel(ctx context.Context, ns netns.NsHandle, changed func(table int)) error {
	sock, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_LINK)
	if err != nil {
		return fmt.Errorf("netlink subscribe: %w", err)
	}
	defer sock.Close()
	fd := sock.GetFd()
	// vishvananda's subscription socket is non-blocking: read it blocking,
	// with a timeout, or this loop spins.
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	// Wake up now and then to notice that ctx ended.
	tv := unix.NsecToTimeval(time.Second.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink socket timeout: %w", err)
	}
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			changed(Lost)
			continue
		case err != nil:
			return fmt.Errorf("netlink events: %w", err)
		}
		eachEvent(buf[:n], changed)
	}
	return nil
}

// eachEvent reports the route, rule and link messages in one datagram.
func eachEvent(buf []byte, changed func(table int)) {
	err := eachMessage(buf, func(typ uint16, _ uint32, data []byte) bool {
		switch typ {
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			if _, table, err := parseRoute(data); err == nil {
				changed(table)
			}
		case unix.RTM_NEWRULE, unix.RTM_DELRULE:
			changed(RuleChanged)
		case unix.RTM_NEWLINK, unix.RTM_DELLINK:
			changed(Lost)
		}
		return true
	})
	if err != nil {
		changed(Lost)
	}
}
