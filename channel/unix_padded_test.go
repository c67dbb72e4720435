//go:build linux

package channel_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

// TestUnixPaddedName: an abstract name padded with NUL bytes to fill
// sun_path (QEMU's tight=off) is its own socket, and messages show it as
// the name and "(padded)", not as raw NUL bytes.
func TestUnixPaddedName(t *testing.T) {
	ctx := testwait.Context(t)
	name := "livemig-padded-" + strconv.Itoa(os.Getpid())
	padded := "@" + name + strings.Repeat("\x00", 107-len(name))
	ln, err := channel.Listen(ctx, "unix", padded)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = channel.Listen(ctx, "unix", padded)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen: %v, want EADDRINUSE", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\x00") || !strings.Contains(msg, "@"+name+" (padded)") {
		t.Errorf("message %q: want the name and (padded), without NUL bytes", msg)
	}
	if s, err := channel.Dial(ctx, "unix", "@"+name); !errors.Is(err, syscall.ECONNREFUSED) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("tight Dial: %v, want ECONNREFUSED", err)
	}
	s, err := channel.Dial(ctx, "unix", padded)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
