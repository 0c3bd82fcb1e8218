package policy

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftSendBuffer fits one transaction of tens of thousands of set elements:
// a batch larger than the socket's send buffer fails with EMSGSIZE, and
// SO_SNDBUF is capped by net.core.wmem_max, so SO_SNDBUFFORCE (which needs
// CAP_NET_ADMIN, as everything here does) is used.
const nftSendBuffer = 32 << 20

// NewNFTConn opens a lasting nftables connection in the network namespace
// behind nsFd (-1: the caller's own).
func NewNFTConn(nsFd int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(forceSendBuffer(nftSendBuffer))}
	if nsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

func forceSendBuffer(bytes int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bytes)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("SO_SNDBUFFORCE: %w", serr)
		}
		return nil
	}
}
