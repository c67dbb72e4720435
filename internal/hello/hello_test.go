package hello

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

// session is the session ID of the golden hellos.
var session = [16]byte{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0}

// goldenHellos are the hellos kept in testdata/ (see testdata/README.md).
// The files predate this package (they were migration/testdata/, when the
// capability bits had names: 1<<0 return-path, 1<<2 stripes), so they also
// prove that moving the format here changed no byte.
var goldenHellos = []struct {
	file string
	h    Hello
}{
	{"hello-request.golden", Hello{
		Version: Version, Role: RoleMain, Source: true,
		Session: session, Index: 0, Channels: 3, Caps: 1<<0 | 1<<2,
	}},
	{"hello-reply.golden", Hello{
		Version: Version, Reply: true, Role: RoleMain,
		Session: session, Index: 0, Channels: 3, Caps: 1 << 0,
	}},
	{"hello-multifd.golden", Hello{
		Version: Version, Role: RoleMultifd, Source: true,
		Session: session, Index: 2, Channels: 3, Caps: 1<<2 | 1<<40,
	}},
	{"hello-oneway.golden", Hello{
		Version: Version, Role: RoleMain, Source: true, OneWay: true,
		Session: session, Channels: 1,
	}},
	{"hello-refused.golden", Hello{
		Version: Version, Reply: true, Role: RoleMain, Status: StatusUnknownSession,
	}},
}

// TestHelloGolden pins the wire layout documented in the package doc: each
// golden hello encodes to its file byte for byte and decodes back.
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

// TestHelloGoldenBytes spells out one request and one refusal byte by
// byte, independently of the files, so that the layout of the package
// documentation is checked against literal bytes.
func TestHelloGoldenBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Hello
		want string // hex, 64 bytes
	}{
		{"request", goldenHellos[0].h, "" +
			"4c4d4947" + // magic "LMIG"
			"01" + // version
			"01" + // kind: request
			"00" + // role: main
			"01" + // flags: source
			"0f1e2d3c4b5a69788796a5b4c3d2e1f0" + // session
			"0000" + // index
			"0003" + // channel count
			"0000" + // status: ok
			"0000" + // reserved
			"0000000000000005" + // capability bits 0 and 2
			strings.Repeat("00", 24)}, // reserved
		{"refusal", goldenHellos[4].h, "" +
			"4c4d4947" + // magic "LMIG"
			"01" + // version
			"02" + // kind: reply
			"00" + // role: main
			"00" + // flags: from the destination
			strings.Repeat("00", 16) + // no session
			"0000" + // no index
			"0000" + // no channel count
			"0001" + // status: unknown session
			"0000" + // reserved
			"0000000000000000" + // no capability bits
			strings.Repeat("00", 24)}, // reserved
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.h.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b); got != tc.want {
				t.Fatalf("encoding:\ngot  %s\nwant %s", got, tc.want)
			}
			want, _ := hex.DecodeString(tc.want)
			var h Hello
			if err := h.UnmarshalBinary(want); err != nil || h != tc.h {
				t.Fatalf("decoded %+v, %v; want %+v", h, err, tc.h)
			}
		})
	}
}

// TestAppendBinary: AppendBinary appends to what b holds and, with room in
// b, does not allocate (the exchange encodes into a stack buffer).
func TestAppendBinary(t *testing.T) {
	h := goldenHellos[0].h
	want, _ := h.MarshalBinary()
	got, err := h.AppendBinary([]byte("x"))
	if err != nil || string(got[:1]) != "x" || !bytes.Equal(got[1:], want) {
		t.Fatalf("AppendBinary = %x, %v", got, err)
	}
	var buf [Size]byte
	if a := testing.AllocsPerRun(100, func() { h.AppendBinary(buf[:0]) }); a != 0 {
		t.Fatalf("%v allocations with room in b", a)
	}
}

// TestCapsCarriedThrough: capability bits have no meaning here, and every
// one of them, named once or never, survives a decode and an encode.
func TestCapsCarriedThrough(t *testing.T) {
	for _, caps := range []uint64{0, 1, 1<<0 | 1<<1 | 1<<50, 1 << 63, ^uint64(0)} {
		h := Hello{Version: Version, Role: RoleMultifd, Source: true, Session: session, Index: 1, Channels: 2, Caps: caps}
		b, _ := h.MarshalBinary()
		var back Hello
		if err := back.UnmarshalBinary(b); err != nil || back.Caps != caps {
			t.Fatalf("caps %#x: decoded %#x, %v", caps, back.Caps, err)
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("caps %#x: re-encoding changed the bytes", caps)
		}
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
		field         string // for *MismatchError
	}{
		{"short", "hello is 10 bytes, want 64", good[:10], ""},
		{"long", "hello is 65 bytes", append(bytes.Clone(good), 0), ""},
		{"garbage", "hello mismatch: magic", []byte(strings.Repeat("GET / HTTP/1.1\r\n", 4)), "magic"},
		{"QEMU stream (a raw peer)", "use Raw", mod(func(b []byte) { copy(b, "QEVM") }), "magic"},
		{"QEMU multifd", "multifd", mod(func(b []byte) { copy(b, []byte{0x11, 0x22, 0x33, 0x44}) }), "magic"},
		{"future version", "version: local 1, remote 2", mod(func(b []byte) { b[4] = 2 }), "version"},
		{"unknown kind", "hello: unknown kind 3", mod(func(b []byte) { b[5] = 3 }), ""},
		// Issue 12: return-path (2) and postcopy (3) are no longer roles.
		{"return-path role", "unknown role 2", mod(func(b []byte) { b[6], b[25] = 2, 1 }), ""},
		{"postcopy role", "unknown role 3", mod(func(b []byte) { b[6], b[25] = 3, 1 }), ""},
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
			h := Hello{Caps: 42} // a failed decode must leave it alone
			err := h.UnmarshalBinary(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			var me *MismatchError
			if isMismatch := errors.As(err, &me); isMismatch != (tc.field != "") || tc.field != "" && me.Field != tc.field {
				t.Fatalf("error %v (%T), want a *MismatchError: %v, for %q", err, err, tc.field != "", tc.field)
			}
			if h != (Hello{Caps: 42}) {
				t.Fatal("a failed decode changed the Hello")
			}
		})
	}
}

// TestAnswerable: which bytes deserve an answer when they do not decode.
func TestAnswerable(t *testing.T) {
	good, _ := goldenHellos[0].h.MarshalBinary()
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"request", good, true},
		{"request breaking a rule", mod(func(b []byte) { b[63] = 1 }), true},
		{"short", good[:63], false},
		{"another magic", mod(func(b []byte) { b[0] = 'X' }), false},
		{"another version", mod(func(b []byte) { b[4] = 2 }), false},
		{"a reply", mod(func(b []byte) { b[5] = 2 }), false},
		{"a one-way request", mod(func(b []byte) { b[7] |= 2 }), false},
	} {
		if got := Answerable(tc.in); got != tc.want {
			t.Errorf("%s: Answerable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStrings(t *testing.T) {
	if RoleMain.String() != "main" || RoleMultifd.String() != "multifd" || Role(9).String() != "role(9)" {
		t.Fatal("Role.String")
	}
	if RoleOf(0) != RoleMain || RoleOf(1) != RoleMultifd || RoleOf(255) != RoleMultifd {
		t.Fatal("RoleOf")
	}
	for st, want := range map[Status]string{
		StatusOK: "ok", StatusUnknownSession: "unknown session", StatusExpiredSession: "expired session",
		StatusDuplicate: "duplicate channel", StatusMismatch: "hello mismatch", StatusRefused: "refused",
		StatusForbidden: "session of another peer", StatusBusy: "too many pending sessions", 8: "status(8)",
	} {
		if got := st.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", uint16(st), got, want)
		}
	}
	e := &MismatchError{Field: "version", Local: "1", Remote: "2"}
	if e.Error() != "hello mismatch: version: local 1, remote 2" {
		t.Fatalf("MismatchError.Error = %q", e.Error())
	}
}
