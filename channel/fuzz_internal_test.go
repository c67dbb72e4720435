//go:build linux

package channel

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FuzzParseVsock: any address string is parsed or refused, never a panic,
// and a parsed address prints back to an equivalent one.
func FuzzParseVsock(f *testing.F) {
	for _, s := range []string{
		"1:1024",                 // loopback CID
		"2:4444",                 // the host
		"4294967295:1",           // VMADDR_CID_ANY spelled out
		":0",                     // listen: any CID, any port
		"1:4294967296",           // port one past uint32
		"-1:1",                   // sign
		"1",                      // no port
		"1:2:3",                  // too many colons
		"0x10:1",                 // hex is not accepted
		" 1:1",                   // spaces
		"18446744073709551616:1", // past uint64
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, listen bool) {
		cid, port, err := parseVsock(s, listen)
		if err != nil {
			return
		}
		a := &VsockAddr{cid, port}
		cid2, port2, err := parseVsock(a.String(), false)
		if err != nil || cid2 != cid || port2 != port {
			t.Fatalf("%q -> %v -> %d:%d, %v", s, a, cid2, port2, err)
		}
	})
}

// FuzzZeroCopyComplete feeds arbitrary control data to the error-queue
// decoder: it must count or refuse, never panic or read out of bounds.
func FuzzZeroCopyComplete(f *testing.F) {
	msg := func(level, typ int32, ee unix.SockExtendedErr) []byte {
		b := make([]byte, unix.CmsgSpace(16))
		h := (*unix.Cmsghdr)(unsafePointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(16))
		d := b[unix.CmsgLen(0):]
		binary.NativeEndian.PutUint32(d[0:], ee.Errno)
		d[4], d[5], d[6], d[7] = ee.Origin, ee.Type, ee.Code, ee.Pad
		binary.NativeEndian.PutUint32(d[8:], ee.Info)
		binary.NativeEndian.PutUint32(d[12:], ee.Data)
		return b
	}
	// A completion of sends 0..3 (copied), as loopback reports it.
	f.Add(msg(unix.SOL_IP, unix.IP_RECVERR, unix.SockExtendedErr{Origin: unix.SO_EE_ORIGIN_ZEROCOPY, Code: 1, Info: 0, Data: 3}), uint32(4))
	// The same over IPv6.
	f.Add(msg(unix.SOL_IPV6, unix.IPV6_RECVERR, unix.SockExtendedErr{Origin: unix.SO_EE_ORIGIN_ZEROCOPY, Info: 0, Data: 0}), uint32(1))
	// A range wider than the sends made: refused.
	f.Add(msg(unix.SOL_IP, unix.IP_RECVERR, unix.SockExtendedErr{Origin: unix.SO_EE_ORIGIN_ZEROCOPY, Info: 0, Data: 9}), uint32(1))
	// An ICMP error from the network, not a completion.
	f.Add(msg(unix.SOL_IP, unix.IP_RECVERR, unix.SockExtendedErr{Errno: uint32(unix.EHOSTUNREACH), Origin: 2}), uint32(1))
	// Truncated header and data.
	f.Add([]byte{1, 2, 3}, uint32(0))
	f.Add(msg(unix.SOL_IP, unix.IP_RECVERR, unix.SockExtendedErr{})[:20], uint32(0))
	f.Fuzz(func(t *testing.T, oob []byte, sent uint32) {
		z := zeroCopy{enabled: true, sent: sent}
		if err := z.complete(oob); err == nil && int32(z.sent-z.done) < 0 {
			t.Fatalf("accepted more completions (%d) than sends (%d)", z.done, z.sent)
		}
	})
}

func unsafePointer(p *byte) unsafe.Pointer { return unsafe.Pointer(p) }
