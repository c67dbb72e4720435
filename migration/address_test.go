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
