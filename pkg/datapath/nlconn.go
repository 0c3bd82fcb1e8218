package datapath

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nlConn is the batcher's netlink socket: the kernel's (sockConn), or a
// test's answering in memory, so that batching, chunking, acknowledgements
// and dumps are tested without root (the seam google/nftables calls
// TestDial).
type nlConn interface {
	// Send hands msgs to the kernel in one sendmsg.
	Send(msgs []byte) error
	// Receive reads one datagram into p, waiting at most timeout for it;
	// truncated: it did not fit.
	Receive(p []byte, timeout time.Duration) (n int, truncated bool, err error)
	Close()
}

// sockConn is a real rtnetlink socket (vishvananda/netlink's, which does
// not block).
type sockConn struct {
	sock *nl.NetlinkSocket
	// recvmsg reads one datagram (unix.Recvmsg; tests put faults in it).
	recvmsg func(fd int, p []byte) (n, flags int, err error)
}

func newSockConn(sock *nl.NetlinkSocket) *sockConn {
	fd := sock.GetFd()
	// Errors carry only the failed message's header, and dumps may be
	// filtered by table in the kernel; both are best effort (old kernels).
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	return &sockConn{sock: sock, recvmsg: recvmsg}
}

func recvmsg(fd int, p []byte) (int, int, error) {
	n, _, flags, _, err := unix.Recvmsg(fd, p, nil, 0)
	return n, flags, err
}

// Send: netlink's sendmsg to the kernel never waits; the kernel handles
// the messages before it returns.
func (c *sockConn) Send(msgs []byte) error {
	return unix.Sendto(c.sock.GetFd(), msgs, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// Receive: rtnetlink answers within the request's sendmsg, and a dump's
// next part within the recvmsg that asks for it, but whatever is not
// there yet is waited for, at most timeout.
func (c *sockConn) Receive(p []byte, timeout time.Duration) (int, bool, error) {
	fd := c.sock.GetFd()
	n, flags, err := c.recvmsg(fd, p)
	if errors.Is(err, unix.EAGAIN) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		ready, perr := unix.Poll(fds, int(timeout.Milliseconds()))
		switch {
		case perr != nil && !errors.Is(perr, unix.EINTR):
			return 0, false, fmt.Errorf("waiting for the kernel's answer: %w", perr)
		case ready == 0:
			return 0, false, fmt.Errorf("no answer from the kernel within %s", timeout)
		}
		n, flags, err = c.recvmsg(fd, p)
	}
	return n, flags&unix.MSG_TRUNC != 0, err
}

func (c *sockConn) Close() { c.sock.Close() }

// port is the socket's netlink port: the kernel's events for our own
// writes carry it.
func (c *sockConn) port() (uint32, error) { return c.sock.GetPid() }
