package channeltest_test

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/channel/channeltest"
	"github.com/livemig/livemig/internal/testwait"
)

// Broken channels: each breaks one rule of the contract. TestSuiteCatches
// runs the suite on each in a child process and checks that it fails, and
// says why: a conformance suite that cannot fail would prove nothing. The
// child runs the suite in synctest bubbles, so that a check that blocks
// for good (ignores-shutdown) fails at once, and one that is only slow
// (8 MiB through WriteBuffers under -race on a busy machine) cannot be
// mistaken for it.

// dropsLastSlice writes all but the last slice of a WriteBuffers call.
type dropsLastSlice struct{ *channeltest.End }

func (d dropsLastSlice) WriteBuffers(bufs *net.Buffers) (int64, error) {
	if len(*bufs) > 1 {
		v := (*bufs)[:len(*bufs)-1]
		n, err := d.End.WriteBuffers(&v)
		*bufs = (*bufs)[len(*bufs)-1:]
		return n, err
	}
	return d.End.WriteBuffers(bufs)
}

// eofAfterClose reports io.EOF instead of net.ErrClosed after Close.
type eofAfterClose struct{ *channeltest.End }

func (e eofAfterClose) Read(p []byte) (int, error) {
	n, err := e.End.Read(p)
	if errors.Is(err, net.ErrClosed) {
		err = io.EOF
	}
	return n, err
}

// ignoresShutdown never half-closes.
type ignoresShutdown struct{ *channeltest.End }

func (ignoresShutdown) Shutdown(channel.Direction) error { return nil }

var broken = map[string]struct {
	wrap func(*channeltest.End) channel.Channel
	want string // in the failing suite's output
}{
	"drops-last-slice": {func(e *channeltest.End) channel.Channel { return dropsLastSlice{e} }, "WriteBuffers left 1 slices in its argument"},
	"eof-after-close":  {func(e *channeltest.End) channel.Channel { return eofAfterClose{e} }, "want an error wrapping net.ErrClosed"},
	"ignores-shutdown": {func(e *channeltest.End) channel.Channel { return ignoresShutdown{e} }, "reading to EOF after the peer's Shutdown(Write): still blocked, and so is every other goroutine"},
}

// TestBrokenChild is the child process's side of TestSuiteCatches.
func TestBrokenChild(t *testing.T) {
	name := os.Getenv("CHANNELTEST_BROKEN")
	if name == "" {
		t.Skip("run by TestSuiteCatches")
	}
	b := broken[name]
	channeltest.TestChannelSynctest(t, func(t testing.TB) (channel.Channel, channel.Channel) {
		x, y := channeltest.Pipe()
		return b.wrap(x), b.wrap(y)
	})
}

func TestSuiteCatches(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping child processes in -short mode")
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The child's -timeout ends where this test's wait would.
			timeout := "0"
			if d := testwait.Deadline(t); !d.IsZero() {
				timeout = time.Until(d).String()
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenChild$", "-test.count=1", "-test.timeout="+timeout)
			cmd.Env = append(os.Environ(), "CHANNELTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the suite passed a broken channel (err %v):\n%s", err, out)
			}
			if !strings.Contains(string(out), b.want) {
				t.Errorf("the suite failed without saying %q:\n%s", b.want, out)
			}
		})
	}
}
