package migration

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/hello"
)

// testRequest is a source's request for the main channel of a 3-channel
// session (internal/hello's golden hello-request).
var testRequest = hello.Hello{
	Version: hello.Version, Role: hello.RoleMain, Source: true,
	Session: SessionID{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0},
	Index:   0, Channels: 3, Caps: 1<<0 | 1<<2,
}

func TestSessionIDString(t *testing.T) {
	id := SessionID(testRequest.Session)
	if s := id.String(); s != "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" {
		t.Fatalf("String = %s", s)
	}
	if id.IsZero() || !(SessionID{}).IsZero() {
		t.Fatal("IsZero")
	}
	if PhaseTLSHandshake.String() != "tls-handshake" || Phase(42).String() != "phase(42)" {
		t.Fatal("Phase.String")
	}
}

// TestDecodeHello: the errors of internal/hello reach users as this
// package's: a wrong magic or version as a *HelloMismatchError, anything
// else with the "migration: " prefix.
func TestDecodeHello(t *testing.T) {
	good, _ := testRequest.MarshalBinary()
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr string
		field   string // for *HelloMismatchError
	}{
		{"QEMU stream (a raw peer)", mod(func(b []byte) { copy(b, "QEVM") }),
			"migration: hello mismatch: magic: local 0x4c4d4947, remote 0x5145564d (a QEMU migration stream: use Raw)", "magic"},
		{"future version", mod(func(b []byte) { b[4] = 2 }), "migration: hello mismatch: version: local 1, remote 2", "version"},
		{"short", good[:10], "migration: hello is 10 bytes, want 64", ""},
		{"return-path role", mod(func(b []byte) { b[6], b[25] = 2, 1 }), "migration: hello: unknown role 2", ""},
		{"reserved byte", mod(func(b []byte) { b[63] = 9 }), "migration: hello: reserved byte 63 is 0x09, want 0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := decodeHello(tc.in)
			if h != nil || err == nil || err.Error() != tc.wantErr {
				t.Fatalf("decodeHello = %v, %v; want the error %q", h, err, tc.wantErr)
			}
			var me *HelloMismatchError
			if errors.As(err, &me) != (tc.field != "") || tc.field != "" && me.Field != tc.field {
				t.Fatalf("error %v (%T), want a *HelloMismatchError: %v, for %q", err, err, tc.field != "", tc.field)
			}
		})
	}
	h, err := decodeHello(good)
	if err != nil || *h != testRequest {
		t.Fatalf("decodeHello(good) = %+v, %v", h, err)
	}
}

// TestRefusedError: the error names the channel's role and index, the
// session and the peer's reason, and only "too many pending sessions" is
// Temporary.
func TestRefusedError(t *testing.T) {
	id := SessionID(testRequest.Session)
	e := newRefusedError(id, 1, hello.StatusForbidden)
	if want := "migration: peer refused multifd channel 1 of session 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0: session of another peer"; e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	if e := newRefusedError(id, 0, hello.StatusUnknownSession); !strings.HasPrefix(e.Error(), "migration: peer refused main channel 0 of") || e.Reason != "unknown session" {
		t.Fatalf("main channel: %q, reason %q", e.Error(), e.Reason)
	}
	for st := hello.StatusUnknownSession; st <= hello.StatusBusy; st++ {
		e := newRefusedError(id, 0, st)
		if e.Temporary() != (st == hello.StatusBusy) || e.Reason != st.String() {
			t.Errorf("status %s: Temporary() = %v, Reason %q", st, e.Temporary(), e.Reason)
		}
	}
}
