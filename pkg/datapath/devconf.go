package datapath

import (
	"encoding/binary"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// devconfSrcValidMark is IPV4_DEVCONF_SRC_VMARK from linux/ip.h. In
// IFLA_INET_CONF, attribute types are devconf indices, which start at 1.
const devconfSrcValidMark = 24

// loopbackIndex is lo's ifindex in every network namespace.
const loopbackIndex = 1

// linkMark is one link's net.ipv4.conf.<link>.src_valid_mark.
type linkMark struct {
	index int
	name  string
	on    bool
}

// linkMarks reads src_valid_mark of every link that has IPv4 settings.
// It reads them over rtnetlink (RTM_GETLINK), not /proc/sys: a container
// runtime mounts /proc/sys read-only in every unprivileged pod.
func (b *batcher) linkMarks() ([]linkMark, error) {
	request := func() {
		start := b.begin(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		b.out = append(b.out, make([]byte, unix.SizeofIfInfomsg)...) // AF_UNSPEC: every link
		b.end(start)
	}
	var out []linkMark
	err := b.dump(request, func() { out = out[:0] }, func(data []byte) error {
		m, ok, err := parseLinkMark(data)
		if ok {
			out = append(out, m)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	slices.SortFunc(out, func(a, b linkMark) int { return a.index - b.index })
	return out, nil
}

// parseLinkMark reads a link message's payload; ok is false for a link
// without IPv4 settings.
func parseLinkMark(data []byte) (m linkMark, ok bool, err error) {
	if len(data) < unix.SizeofIfInfomsg {
		return m, false, fmt.Errorf("link message of %d bytes", len(data))
	}
	m.index = int(int32(binary.NativeEndian.Uint32(data[4:])))
	err = eachAttr(data[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_IFNAME:
			m.name = string(v[:max(0, len(v)-1)])
		case unix.IFLA_AF_SPEC:
			_ = eachAttr(v, func(family uint16, v []byte) {
				if family != unix.AF_INET {
					return
				}
				_ = eachAttr(v, func(typ uint16, conf []byte) {
					if off := (devconfSrcValidMark - 1) * 4; typ == unix.IFLA_INET_CONF && len(conf) >= off+4 {
						m.on, ok = binary.NativeEndian.Uint32(conf[off:]) != 0, true
					}
				})
			})
		}
	})
	return m, ok, err
}

// setLinkMarks sets src_valid_mark on the links with these indices over
// rtnetlink (RTM_SETLINK with IFLA_AF_SPEC/AF_INET/IFLA_INET_CONF), which
// needs CAP_NET_ADMIN only. A link that is gone counts as done.
func (b *batcher) setLinkMarks(indices []int, on bool) error {
	v := uint32(0)
	if on {
		v = 1
	}
	var val [4]byte
	binary.NativeEndian.PutUint32(val[:], v)
	spec := nlAttr(unix.IFLA_AF_SPEC, nlAttr(unix.AF_INET, nlAttr(unix.IFLA_INET_CONF, nlAttr(devconfSrcValidMark, val[:]))))
	for _, i := range indices {
		start := b.begin(unix.RTM_SETLINK, 0)
		var ifi [unix.SizeofIfInfomsg]byte
		binary.NativeEndian.PutUint32(ifi[4:], uint32(i))
		b.out = append(b.out, ifi[:]...)
		b.out = append(b.out, spec...)
		b.end(start)
	}
	if err := b.exchange(func(e unix.Errno) bool { return e == unix.ENODEV }); err != nil {
		return fmt.Errorf("setting src_valid_mark=%d on %d links: %w", v, len(indices), err)
	}
	return nil
}

// nlAttr is one netlink attribute, padded.
func nlAttr(typ uint16, v []byte) []byte {
	out := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(v)))
	out = binary.NativeEndian.AppendUint16(out, typ)
	out = append(out, v...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}
