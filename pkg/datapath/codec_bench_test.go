package datapath

import (
	"encoding/binary"
	"net/netip"
	"testing"

	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The batcher encodes and decodes netlink attributes by hand. Issue 12
// asked whether mdlayher/netlink's AttributeEncoder and AttributeDecoder
// (a dependency already) would do at the same speed; these compare both on
// 10,000 steered routes, the size of a big table.

func codecRoutes() []kroute {
	rs := make([]kroute, 10_000)
	for i := range rs {
		rs[i] = kroute{dst: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}).As4(), bits: 32, typ: unix.RTN_UNICAST, proto: 146, nh: 0x5e000001, src: [4]byte{198, 51, 100, 10}}
	}
	return rs
}

func BenchmarkRouteEncoding(b *testing.B) {
	rs := codecRoutes()
	b.Run("ours", func(b *testing.B) {
		bt := &batcher{}
		for b.Loop() {
			for _, r := range rs {
				bt.route(unix.RTM_NEWROUTE, 52101, r)
			}
			bt.out, bt.ends = bt.out[:0], bt.ends[:0]
		}
	})
	b.Run("mdlayher", func(b *testing.B) {
		var out []byte
		var hdrRest [12]byte
		for b.Loop() {
			for _, r := range rs {
				ae := mdnetlink.NewAttributeEncoder()
				ae.Bytes(unix.RTA_DST, r.dst[:])
				ae.Uint32(unix.RTA_TABLE, 52101)
				ae.Uint32(rtaNHID, r.nh)
				ae.Bytes(unix.RTA_PREFSRC, r.src[:])
				attrs, err := ae.Encode()
				if err != nil {
					b.Fatal(err)
				}
				out = binary.NativeEndian.AppendUint32(out, uint32(unix.NLMSG_HDRLEN+unix.SizeofRtMsg+len(attrs)))
				out = append(out, hdrRest[:]...) // type, flags, seq, port
				out = append(out, unix.AF_INET, r.bits, 0, 0, unix.RT_TABLE_UNSPEC, r.proto, unix.RT_SCOPE_UNIVERSE, r.typ, 0, 0, 0, 0)
				out = append(out, attrs...)
			}
			out = out[:0]
		}
	})
}

func BenchmarkRouteDecoding(b *testing.B) {
	bt := &batcher{}
	var msgs [][]byte
	for _, r := range codecRoutes() {
		bt.route(unix.RTM_NEWROUTE, 52101, r)
	}
	start := 0
	for _, end := range bt.ends {
		msgs = append(msgs, bt.out[start+unix.NLMSG_HDRLEN:end])
		start = end
	}
	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			for _, m := range msgs {
				if _, _, err := parseRoute(m); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("mdlayher", func(b *testing.B) {
		for b.Loop() {
			for _, m := range msgs {
				r := dumpedRoute{kroute: kroute{bits: m[1], proto: m[5], typ: m[7]}}
				ad, err := mdnetlink.NewAttributeDecoder(m[unix.SizeofRtMsg:])
				if err != nil {
					b.Fatal(err)
				}
				var table uint32
				for ad.Next() {
					switch ad.Type() {
					case unix.RTA_TABLE:
						table = ad.Uint32()
					case unix.RTA_DST:
						r.dst = [4]byte(ad.Bytes())
					case rtaNHID:
						r.nh = ad.Uint32()
					case unix.RTA_PREFSRC:
						r.src = [4]byte(ad.Bytes())
					}
				}
				if ad.Err() != nil || table != 52101 {
					b.Fatal(ad.Err())
				}
			}
		}
	})
}
