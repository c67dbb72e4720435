package channeltest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

// MakePipe returns two connected Channels: what a writes b reads, and what
// b writes a reads. It registers its cleanups with t.Cleanup and calls
// t.Fatal or t.Skip itself when it cannot make a pair. The suite closes
// both ends of every pair it makes; a cleanup that closes them again is
// harmless, since a second Close must be.
type MakePipe func(t testing.TB) (a, b channel.Channel)

// TestChannel runs the conformance suite on pairs from mp, each check in
// its own subtest with a fresh pair: BasicIO, PingPong, WriteBuffers,
// HalfClose, PeerClose, CloseUnblocksRead, CloseUnblocksWrite, DoubleClose,
// ErrClosedAfterClose, and ReadDeadline when the channel is a
// channel.Deadliner. Every subtest also runs on the reversed pair (b, a).
//
// A step that stays blocked fails its subtest, naming the step, a tenth
// of the test binary's -timeout before it expires (never, with -timeout
// 0): no step has a bound of its own, which a slow machine could exceed.
func TestChannel(t *testing.T, mp MakePipe) {
	run(t, mp, false)
}

// TestChannelSynctest runs the suite as [TestChannel] does, each check
// inside a testing/synctest bubble (mp is called inside it). It is for
// in-memory channels such as [Pipe], whose every blocking call is durably
// blocking in synctest's sense (a channel operation, sync.Cond.Wait): a
// step that could never return fails at once, when every goroutine of the
// bubble is blocked, and time is fake, so no step depends on the speed of
// the machine. Channels that do real I/O must use TestChannel.
func TestChannelSynctest(t *testing.T, mp MakePipe) {
	run(t, mp, true)
}

// check is a check's *testing.T, which says whether it runs in a bubble.
type check struct {
	*testing.T
	bubble bool
}

func run(t *testing.T, mp MakePipe, bubble bool) {
	tests := []struct {
		name string
		fn   func(t *check, a, b channel.Channel)
	}{
		{"BasicIO", testBasicIO},
		{"PingPong", testPingPong},
		{"WriteBuffers", testWriteBuffers},
		{"HalfClose", testHalfClose},
		{"PeerClose", testPeerClose},
		{"CloseUnblocksRead", testCloseUnblocksRead},
		{"CloseUnblocksWrite", testCloseUnblocksWrite},
		{"DoubleClose", testDoubleClose},
		{"ErrClosedAfterClose", testErrClosedAfterClose},
		{"ReadDeadline", testReadDeadline},
	}
	do := func(t *testing.T, f func(t *testing.T)) { f(t) }
	if bubble {
		do = func(t *testing.T, f func(t *testing.T)) { synctest.Test(t, f) }
	}
	for _, tt := range tests {
		for _, reversed := range []bool{false, true} {
			name := tt.name
			if reversed {
				name += "/Reversed"
			}
			t.Run(name, func(t *testing.T) {
				do(t, func(t *testing.T) {
					a, b := mp(t)
					t.Cleanup(func() { closeBoth(a, b) })
					if reversed {
						a, b = b, a
					}
					tt.fn(&check{T: t, bubble: bubble}, a, b)
				})
			})
		}
	}
}

// closeBoth closes a and b at once, since closing one end may wait for
// the other (a child process that waits for its peer's end of file).
func closeBoth(a, b channel.Channel) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Close() }()
	go func() { defer wg.Done(); b.Close() }()
	wg.Wait()
}

// forever is the fake time after which a wait in a bubble gives up. Fake
// time moves only when every goroutine of the bubble is blocked, so the
// wait ends by then only if what it waits for can never happen.
const forever = 1000 * time.Hour

// await waits for done to be closed; it fails the test, naming what, if
// that can never happen (in a bubble) or has not happened as the test
// binary's -timeout nears.
func (t *check) await(what string, done <-chan struct{}) {
	t.Helper()
	if !t.bubble {
		testwait.Recv(t, what, done)
		return
	}
	select {
	case <-done:
	case <-time.After(forever):
		t.Fatalf("%s: still blocked, and so is every other goroutine of the synctest bubble: it can never return", what)
	}
}

// within runs f in a goroutine and waits for it to return (see await).
func within(t *check, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t.await(what, done)
}

// goAsync runs f in a goroutine and returns a function that waits for it
// (see await) and returns its error.
func goAsync(f func() error) func(t *check, what string) error {
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = f()
	}()
	return func(t *check, what string) error {
		t.Helper()
		t.await(what, done)
		return err
	}
}

// blocked waits until the goroutine running f is blocked in it (see
// testwait.Call.Blocked; in a bubble, until every goroutine is), and
// returns a function that waits for f's error as goAsync's does.
func blocked(t *check, f func() error) func(t *check, what string) error {
	t.Helper()
	if t.bubble {
		wait := goAsync(f)
		synctest.Wait()
		return wait
	}
	c := testwait.Go(f)
	c.Blocked(t)
	return func(t *check, what string) error {
		t.Helper()
		return c.Result(t, what)
	}
}

func randomData(n int, seed uint64) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// writeChunks writes data in random-sized pieces, then shuts down writing.
func writeChunks(c channel.Channel, data []byte, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(64<<10))
		m, err := c.Write(data[:n])
		if err != nil {
			return err
		}
		if m != n {
			return errors.New("short write without error")
		}
		data = data[n:]
	}
	return c.Shutdown(channel.Write)
}

// readAll reads until io.EOF with random-sized reads.
func readAll(c channel.Channel, seed uint64) ([]byte, error) {
	r := rand.New(rand.NewPCG(seed, 2))
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf[:1+r.IntN(len(buf))])
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func testBasicIO(t *check, a, b channel.Channel) {
	const size = 1 << 20
	ab, ba := randomData(size, 1), randomData(size+17, 2)
	var wg sync.WaitGroup
	var gotAB, gotBA []byte
	var errs [4]error
	wg.Add(4)
	go func() { defer wg.Done(); errs[0] = writeChunks(a, ab, 3) }()
	go func() { defer wg.Done(); errs[1] = writeChunks(b, ba, 4) }()
	go func() { defer wg.Done(); gotAB, errs[2] = readAll(b, 5) }()
	go func() { defer wg.Done(); gotBA, errs[3] = readAll(a, 6) }()
	within(t, "transfer both ways", wg.Wait)
	for i, what := range []string{"a writing", "b writing", "b reading", "a reading"} {
		if errs[i] != nil {
			t.Errorf("%s: %v", what, errs[i])
		}
	}
	if !bytes.Equal(gotAB, ab) {
		t.Errorf("a->b: got %d bytes, want %d (first difference at %d)", len(gotAB), len(ab), firstDiff(gotAB, ab))
	}
	if !bytes.Equal(gotBA, ba) {
		t.Errorf("b->a: got %d bytes, want %d (first difference at %d)", len(gotBA), len(ba), firstDiff(gotBA, ba))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testPingPong(t *check, a, b channel.Channel) {
	const rounds = 50
	echo := goAsync(func() error {
		buf := make([]byte, 8)
		for i := 0; i < rounds; i++ {
			if _, err := io.ReadFull(b, buf); err != nil {
				return err
			}
			if _, err := b.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
	within(t, "ping-pong", func() {
		buf := make([]byte, 8)
		for i := 0; i < rounds; i++ {
			msg := []byte{'p', 'i', 'n', 'g', byte(i), byte(i >> 8), 0, 1}
			if _, err := a.Write(msg); err != nil {
				t.Errorf("round %d: write: %v", i, err)
				return
			}
			if _, err := io.ReadFull(a, buf); err != nil {
				t.Errorf("round %d: read: %v", i, err)
				return
			}
			if !bytes.Equal(buf, msg) {
				t.Errorf("round %d: got %q, want %q", i, buf, msg)
				return
			}
		}
	})
	if err := echo(t, "echo"); err != nil {
		t.Errorf("echo: %v", err)
	}
}

func testWriteBuffers(t *check, a, b channel.Channel) {
	const pages, pageSize = 2048, 4096
	data := randomData(pages*pageSize+100, 7)
	bufs := make(net.Buffers, 0, pages+3)
	for i := 0; i < pages; i++ {
		bufs = append(bufs, data[i*pageSize:(i+1)*pageSize])
	}
	// Odd sizes and empty slices are part of the contract too.
	bufs = append(bufs, nil, data[pages*pageSize:pages*pageSize+1], data[pages*pageSize+1:])
	want := int64(len(data))

	read := goAsync(func() error {
		got := make([]byte, len(data))
		if _, err := io.ReadFull(b, got); err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return errors.New("bytes differ at " + strconv.Itoa(firstDiff(got, data)))
		}
		return nil
	})
	var n int64
	var err error
	v := bufs
	within(t, "WriteBuffers", func() { n, err = a.WriteBuffers(&v) })
	if err != nil {
		t.Fatalf("WriteBuffers: %v", err)
	}
	if n != want {
		t.Errorf("WriteBuffers wrote %d bytes, want %d", n, want)
	}
	if len(v) != 0 {
		t.Errorf("WriteBuffers left %d slices in its argument, want 0 (it consumes them)", len(v))
	}
	if err := read(t, "reading what WriteBuffers wrote"); err != nil {
		t.Errorf("reading: %v", err)
	}

	// An empty list writes nothing.
	var empty net.Buffers
	if n, err := a.WriteBuffers(&empty); n != 0 || err != nil {
		t.Errorf("WriteBuffers(empty) = %d, %v; want 0, nil", n, err)
	}
}

func testHalfClose(t *check, a, b channel.Channel) {
	if _, err := a.Write([]byte("last words")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := a.Shutdown(channel.Write); err != nil {
		t.Fatalf("Shutdown(Write): %v", err)
	}
	var got []byte
	var err error
	within(t, "reading to EOF after the peer's Shutdown(Write)", func() { got, err = readAll(b, 8) })
	if err != nil || string(got) != "last words" {
		t.Fatalf("peer read %q, %v; want %q, io.EOF", got, err, "last words")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Errorf("Write after Shutdown(Write) succeeded")
	}
	// The other direction still works.
	done := goAsync(func() error { return writeChunks(b, []byte("reply"), 9) })
	within(t, "reading the reply", func() { got, err = readAll(a, 10) })
	if err != nil || string(got) != "reply" {
		t.Errorf("read the other direction: %q, %v; want %q, io.EOF", got, err, "reply")
	}
	if err := done(t, "writing the reply"); err != nil {
		t.Errorf("writing the reply: %v", err)
	}
}

func testPeerClose(t *check, a, b channel.Channel) {
	if _, err := a.Write([]byte("bye")); err != nil {
		t.Fatalf("write: %v", err)
	}
	closed := goAsync(a.Close)
	var got []byte
	var err error
	within(t, "reading after the peer's Close", func() { got, err = readAll(b, 11) })
	if err != nil || string(got) != "bye" {
		t.Errorf("read after peer Close: %q, %v; want %q, io.EOF", got, err, "bye")
	}
	b.Close()
	closed(t, "Close")
}

func testCloseUnblocksRead(t *check, a, b channel.Channel) {
	read := blocked(t, func() error {
		_, err := a.Read(make([]byte, 10))
		return err
	})
	closed := goAsync(a.Close)
	err := read(t, "Read after Close")
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Read after Close returned %v, want an error wrapping net.ErrClosed", err)
	}
	closed(t, "Close")
}

func testCloseUnblocksWrite(t *check, a, b channel.Channel) {
	chunk := make([]byte, 1<<20)
	write := blocked(t, func() error { // the peer does not read: the write blocks
		for {
			if _, err := a.Write(chunk); err != nil {
				return err
			}
		}
	})
	closed := goAsync(a.Close)
	err := write(t, "Write after Close")
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Write after Close returned %v, want an error wrapping net.ErrClosed", err)
	}
	closed(t, "Close")
}

func testDoubleClose(t *check, a, b channel.Channel) {
	within(t, "first Close", func() { a.Close() })
	var err error
	within(t, "second Close", func() { err = a.Close() })
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want nil or an error wrapping net.ErrClosed", err)
	}
}

func testErrClosedAfterClose(t *check, a, b channel.Channel) {
	within(t, "Close", func() { a.Close() })
	if n, err := a.Read(make([]byte, 4)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %d, %v; want an error wrapping net.ErrClosed", n, err)
	}
	if n, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %d, %v; want an error wrapping net.ErrClosed", n, err)
	}
	bufs := net.Buffers{[]byte("x")}
	if n, err := a.WriteBuffers(&bufs); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBuffers after Close = %d, %v; want an error wrapping net.ErrClosed", n, err)
	}
	if a.Name() == "" {
		t.Errorf("Name() is empty")
	}
}

func testReadDeadline(t *check, a, b channel.Channel) {
	d, ok := a.(channel.Deadliner)
	if !ok {
		t.Skipf("%T is not a channel.Deadliner", a)
	}
	if err := d.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	var err error
	within(t, "Read past its deadline", func() { _, err = a.Read(make([]byte, 4)) })
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past deadline = %v; want a net.Error timeout wrapping os.ErrDeadlineExceeded", err)
	}
	if err := d.SetReadDeadline(time.Time{}); err != nil {
		t.Fatalf("clearing the deadline: %v", err)
	}
	w := goAsync(func() error { _, err := b.Write([]byte("late")); return err })
	got := make([]byte, 4)
	within(t, "Read after clearing the deadline", func() { _, err = io.ReadFull(a, got) })
	if err != nil || string(got) != "late" {
		t.Errorf("Read after clearing the deadline = %q, %v; want %q", got, err, "late")
	}
	if err := w(t, "write"); err != nil {
		t.Errorf("write: %v", err)
	}
}
