package datapath

import (
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftBuffer fits one transaction of tens of thousands of set elements and
// the acknowledgements of thousands of sets: a batch larger than the
// socket's send buffer fails with EMSGSIZE, acknowledgements past its
// receive buffer with ENOBUFS, and SO_SNDBUF/SO_RCVBUF are capped by
// net.core.[wr]mem_max, so the FORCE variants (which need CAP_NET_ADMIN,
// as everything here does) are used.
const nftBuffer = 32 << 20

// NFTConn is a lasting nftables connection, and the deadline of its
// socket: google/nftables waits for the kernel's answers without one.
type NFTConn struct {
	*nftables.Conn
	sock    *netlink.Conn
	timeout time.Duration
}

// NewNFTConn opens a lasting nftables connection in the network namespace
// behind nsFd (-1: the caller's own).
func NewNFTConn(nsFd int) (*NFTConn, error) {
	nc := &NFTConn{timeout: netlinkTimeout}
	keep := func(c *netlink.Conn) error { nc.sock = c; return nil }
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(forceBuffers(nftBuffer), keep)}
	if nsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	nc.Conn = c
	return nc, nil
}

// bound gives whatever the connection does next its timeout to finish:
// a transaction or a listing then fails instead of waiting for good. Each
// of the Firewall's operations calls it first.
func (c *NFTConn) bound() {
	if c.sock != nil {
		_ = c.sock.SetDeadline(time.Now().Add(c.timeout))
	}
}

func forceBuffers(bytes int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bytes); serr != nil {
				serr = fmt.Errorf("SO_SNDBUFFORCE: %w", serr)
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes); serr != nil {
				serr = fmt.Errorf("SO_RCVBUFFORCE: %w", serr)
			}
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		return nil
	}
}
