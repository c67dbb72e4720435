package migration

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenHellos are the hellos kept in testdata/ (see testdata/README.md).
var goldenHellos = []struct {
	file string
	h    Hello
}{
	{"hello-request.golden", Hello{
		Version: HelloVersion, Role: RoleMain, Source: true,
		Session: SessionID{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0},
		Index:   0, Channels: 3, Capabilities: CapReturnPath | CapStripes,
	}},
	{"hello-reply.golden", Hello{
		Version: HelloVersion, Reply: true, Role: RoleMain,
		Session: SessionID{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0},
		Index:   0, Channels: 3, Capabilities: CapReturnPath,
	}},
	{"hello-multifd.golden", Hello{
		Version: HelloVersion, Role: RoleMultifd, Source: true,
		Session: SessionID{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0},
		Index:   2, Channels: 3, Capabilities: CapStripes | 1<<40,
	}},
	{"hello-oneway.golden", Hello{
		Version: HelloVersion, Role: RoleMain, Source: true, OneWay: true,
		Session:  SessionID{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0},
		Channels: 1,
	}},
	{"hello-refused.golden", Hello{
		Version: HelloVersion, Reply: true, Role: RoleMain, Status: StatusUnknownSession,
	}},
}

// TestHelloGolden pins the wire layout documented in the package doc.
func TestHelloGolden(t *testing.T) {
	for _, g := range goldenHellos {
		t.Run(g.file, func(t *testing.T) {
			b, _ := g.h.MarshalBinary()
			path := filepath.Join("testdata", g.file)
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("encoding changed:\ngot  %s\nwant %s", hex.EncodeToString(b), hex.EncodeToString(want))
			}
			var h Hello
			if err := h.UnmarshalBinary(want); err != nil {
				t.Fatal(err)
			}
			if h != g.h {
				t.Fatalf("decoded %+v, want %+v", h, g.h)
			}
		})
	}
	// The documented offsets.
	b, _ := goldenHellos[2].h.MarshalBinary()
	if string(b[:4]) != "LMIG" || b[4] != 1 || b[5] != 1 || b[6] != 1 || b[7] != 1 || b[8] != 0x0f ||
		b[25] != 2 || b[27] != 3 || b[29] != 0 || b[34] != 1 || b[39] != 4 || len(b) != 64 {
		t.Fatalf("layout differs from the package documentation: %x", b)
	}
}

// TestHelloDecodeErrors: each malformed hello is refused with a reason.
func TestHelloDecodeErrors(t *testing.T) {
	good, _ := goldenHellos[0].h.MarshalBinary()
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name, wantErr string
		in            []byte
		field         string // for *HelloMismatchError
	}{
		{"short", "is 10 bytes", good[:10], ""},
		{"long", "is 65 bytes", append(bytes.Clone(good), 0), ""},
		{"garbage", "hello mismatch: magic", []byte(strings.Repeat("GET / HTTP/1.1\r\n", 4)), "magic"},
		{"QEMU stream (a raw peer)", "use Raw", mod(func(b []byte) { copy(b, "QEVM") }), "magic"},
		{"QEMU multifd", "multifd", mod(func(b []byte) { copy(b, []byte{0x11, 0x22, 0x33, 0x44}) }), "magic"},
		{"future version", "version: local 1, remote 2", mod(func(b []byte) { b[4] = 2 }), "version"},
		{"unknown kind", "unknown kind 3", mod(func(b []byte) { b[5] = 3 }), ""},
		{"unknown role", "unknown role 4", mod(func(b []byte) { b[6] = 4 }), ""},
		{"unknown flags", "unknown flags", mod(func(b []byte) { b[7] = 4 }), ""},
		{"one-way reply", "one-way reply", mod(func(b []byte) { b[5], b[7] = 2, 2 }), ""},
		{"zero channels", "channel count 0", mod(func(b []byte) { b[26], b[27] = 0, 0 }), ""},
		{"too many channels", "channel count 257", mod(func(b []byte) { b[26], b[27] = 1, 1 }), ""},
		{"index past count", "index 3 not below", mod(func(b []byte) { b[25] = 3; b[6] = 1 }), ""},
		{"main with index", "main channel with index 1", mod(func(b []byte) { b[25] = 1 }), ""},
		{"multifd with index 0", "multifd channel with index 0", mod(func(b []byte) { b[6] = 1 }), ""},
		// Issue 11: a request with a status and no channels crashed
		// Server.place; a request never carries a status.
		{"request with a status", "request with status 1", mod(func(b []byte) { b[29] = 1; b[27] = 0 }), ""},
		{"reply with an unknown status", "unknown status 8", mod(func(b []byte) { b[5], b[29], b[27] = 2, 8, 0 }), ""},
		{"refusal with a count", "refusal (unknown session) with a session", mod(func(b []byte) { b[5], b[29] = 2, 1 }), ""},
		{"ok reply without channels", "channel count 0", mod(func(b []byte) { b[5], b[27] = 2, 0 }), ""},
		{"ok reply index past count", "index 3 not below", mod(func(b []byte) { b[5], b[6], b[25] = 2, 1, 3 }), ""},
		{"reserved byte 30", "reserved byte 30 is 0x09", mod(func(b []byte) { b[30] = 9 }), ""},
		{"reserved byte 31", "reserved byte 31 is 0x01", mod(func(b []byte) { b[31] = 1 }), ""},
		{"reserved byte 63", "reserved byte 63 is 0x09", mod(func(b []byte) { b[63] = 9 }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Hello
			err := h.UnmarshalBinary(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			var me *HelloMismatchError
			if tc.field != "" && (!errors.As(err, &me) || me.Field != tc.field) {
				t.Fatalf("error %v, want a *HelloMismatchError for %s", err, tc.field)
			}
			if h != (Hello{}) {
				t.Fatal("a failed decode changed the Hello")
			}
		})
	}
}

func TestSessionIDString(t *testing.T) {
	id := goldenHellos[0].h.Session
	if s := id.String(); s != "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" {
		t.Fatalf("String = %s", s)
	}
	if id.IsZero() || !(SessionID{}).IsZero() {
		t.Fatal("IsZero")
	}
	if s := (CapReturnPath | CapStripes | 1<<9).String(); s != "return-path|stripes|0x200" {
		t.Fatalf("Capabilities.String = %s", s)
	}
	if RoleMultifd.String() != "multifd" || Role(9).String() != "role(9)" || StatusExpiredSession.String() != "expired session" {
		t.Fatal("String methods")
	}
	if PhaseTLSHandshake.String() != "tls-handshake" || Phase(42).String() != "phase(42)" {
		t.Fatal("Phase.String")
	}
}
