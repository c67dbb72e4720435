package migration

import (
	"errors"
	"testing"

	"github.com/livemig/livemig/uri"
)

// TestZeroAddress: the zero uri.Address, which a caller may hold for "no
// address", fails every entry point at once instead of dialing or
// listening on something.
func TestZeroAddress(t *testing.T) {
	ctx := testCtx(t)
	var zero uri.Address
	if _, err := Listen(ctx, zero, nil); !errors.Is(err, errZeroAddress) {
		t.Errorf("Listen: %v, want %v", err, errZeroAddress)
	}
	if _, err := Dial(ctx, zero, nil); !errors.Is(err, errZeroAddress) {
		t.Errorf("Dial: %v, want %v", err, errZeroAddress)
	}
	if _, err := Connect(ctx, zero, nil).Wait(ctx); !errors.Is(err, errZeroAddress) {
		t.Errorf("Connect: %v, want %v", err, errZeroAddress)
	}
	if _, err := DialSession(ctx, zero, &Config{Channels: 2}); !errors.Is(err, errZeroAddress) {
		t.Errorf("DialSession: %v, want %v", err, errZeroAddress)
	}
}

// TestAddressRules: which addresses reach a peer, which name a TLS
// client checks, and when x509 credentials lack one (moved here from
// package uri, whose Address methods they were).
func TestAddressRules(t *testing.T) {
	for _, tt := range []struct {
		in           string
		reachesPeer  bool
		tlsHostname  string
		needsHostame bool
	}{
		{"tcp:h:1", true, "h", false},
		{"tcp:h:1,tls-creds=c", true, "h", false},
		{"tcp::1,tls-creds=c", true, "", true},
		{"tcp:h:1,tls-creds=c,tls-hostname=other", true, "other", false},
		{"tcp:[::1]:1,tls-creds=c", true, "::1", false},
		{"unix:/s", true, "", false},
		{"unix:/s,tls-creds=c", true, "", true},
		{"unix:/s,tls-creds=c,tls-hostname=h", true, "h", false},
		{"vsock:2:1,tls-creds=c", true, "", true},
		{"exec:cat,tls-creds=c", true, "", true},
		{"fd:3,tls-creds=c", true, "", true},
		{"file:/f", false, "", false},
	} {
		a := mustParse(t, tt.in)
		if got := reachesPeer(a); got != tt.reachesPeer {
			t.Errorf("reachesPeer(%q) = %v", tt.in, got)
		}
		if got := tlsHostname(a); got != tt.tlsHostname {
			t.Errorf("tlsHostname(%q) = %q, want %q", tt.in, got, tt.tlsHostname)
		}
		if got := needsTLSHostname(a); got != tt.needsHostame {
			t.Errorf("needsTLSHostname(%q) = %v", tt.in, got)
		}
	}
	var zero uri.Address
	if reachesPeer(zero) || tlsHostname(zero) != "" || needsTLSHostname(zero) {
		t.Errorf("zero Address: reachesPeer %v, tlsHostname %q, needsTLSHostname %v", reachesPeer(zero), tlsHostname(zero), needsTLSHostname(zero))
	}
}
