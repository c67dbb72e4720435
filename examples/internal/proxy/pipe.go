package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/migration"
)

// pipe copies a to b and b to a until both directions end, then closes
// both. A direction that ends cleanly passes the end on (a FIN, and
// close_notify over TLS) and leaves the other direction running. A cut
// (a read or write error, a stream that ends in a way its transport calls
// truncated, or ctx's end) is never passed on as a clean end: both
// streams are aborted (migration.Stream.Abort resets tcp connections,
// without close_notify) and the cut is returned.
//
// One reset is not a cut: a peer that resets its connection after the
// proxy has passed it the end of the other side's stream (see
// afterEnd). Both streams are still aborted, as for a cut, since a reset
// may have dropped bytes that peer had sent, but pipe logs the
// connection as closed and returns nil.
func pipe(ctx context.Context, n int, a, b *migration.Stream, oneWay bool, logf func(string, ...any)) error {
	start := time.Now()
	var (
		once  sync.Once
		cause error // the first cut, set in once
	)
	cut := func(err error) {
		once.Do(func() {
			cause = err
			a.Abort()
			b.Abort()
		})
	}
	stop := context.AfterFunc(ctx, func() { cut(fmt.Errorf("proxy stopping: %w", ctx.Err())) })
	var wg sync.WaitGroup
	var fwd, back int64
	// fwdEnd and backEnd are set once a direction has read its source's
	// clean end, before it passes the end on.
	var fwdEnd, backEnd atomic.Bool
	var resetAfterEnd atomic.Bool
	wg.Add(2)
	go func() {
		defer wg.Done()
		var err error
		fwd, err = copyHalf(b, a, &fwdEnd)
		if err == nil {
			return
		}
		if afterEnd(err, &backEnd) {
			resetAfterEnd.Store(true)
			once.Do(func() { a.Abort(); b.Abort() })
			return
		}
		cut(fmt.Errorf("forward: %w", err))
	}()
	go func() {
		defer wg.Done()
		if oneWay {
			return
		}
		var err error
		back, err = copyHalf(a, b, &backEnd)
		if err == nil {
			return
		}
		if afterEnd(err, &fwdEnd) {
			resetAfterEnd.Store(true)
			once.Do(func() { a.Abort(); b.Abort() })
			return
		}
		cut(fmt.Errorf("back: %w", err))
	}()
	wg.Wait()
	stop()
	// Both directions are done: a cut that ctx starts from now on is too
	// late to matter, and one already running is waited for.
	once.Do(func() {})
	a.Close()
	b.Close()
	el := time.Since(start).Seconds()
	if cause != nil {
		return fmt.Errorf("connection %d: cut after %s forward, %s back: %w", n, cli.FormatBytes(float64(fwd)), cli.FormatBytes(float64(back)), cause)
	}
	how := ""
	if resetAfterEnd.Load() {
		how = " peer reset after the end of the stream (QEMU's normal way of ending):"
	}
	logf("connection %d: closed:%s %s forward, %s back in %.2f s (%s/s)", n, how, cli.FormatBytes(float64(fwd)),
		cli.FormatBytes(float64(back)), el, cli.FormatBytes(float64(fwd+back)/max(el, 1e-3)))
	return nil
}

// afterEnd reports whether err, which ended one direction, is the peer
// that direction reads from resetting its connection (ECONNRESET on a
// read) after the other direction had read the clean end of its own
// source (toward, set by that direction's copyHalf) and so passed, or
// was passing, that end on to this peer. The peer then had the whole
// stream it was sent: a QEMU destination closes its socket once it has
// loaded what it needs, and the kernel resets the connection when bytes
// it has not read are still queued there (the proxy's close_notify, for
// one). A reset at any other time is a cut.
func afterEnd(err error, toward *atomic.Bool) bool {
	var re *readError
	return errors.As(err, &re) && errors.Is(re.err, syscall.ECONNRESET) && toward.Load()
}

// readError marks an error of copyHalf's source, to tell it from one of
// its destination.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sourceReader returns r's errors other than io.EOF as *readError.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// copyHalf copies src's reading side into dst's channel. At a clean end
// it sets ended and then shuts dst's writing side, so the peer sees the
// end; it returns any other end as an error (a failed read of src as a
// *readError), which pipe turns into a cut of both streams.
func copyHalf(dst, src *migration.Stream, ended *atomic.Bool) (int64, error) {
	buf := make([]byte, copyBuffer)
	growSendBuffer(dst)
	// src's channel is read directly: a read then takes up to the whole
	// buffer, instead of the Stream's 32 KiB read buffer, and nothing is
	// copied twice (for TLS, see recordGatherer). The Stream has read nothing
	// (Accept and Dial read the hello from the channel itself), and its
	// Abort closes the channel, which still unblocks these reads.
	n, err := io.CopyBuffer(writerOnly{dst.Channel()}, sourceReader{newChannelReader(src.Channel())}, buf)
	if err == nil {
		// The channel is read directly, not through the Stream: an abort
		// by the other direction shows in the Stream's sticky error even
		// where the closed channel read as an end.
		err = src.Err()
	}
	if err != nil {
		return n, err
	}
	ended.Store(true)
	// A peer that already closed, or a file, may refuse the shutdown; the
	// copy itself succeeded, and Close follows.
	_ = dst.Channel().Shutdown(channel.Write)
	return n, nil
}
