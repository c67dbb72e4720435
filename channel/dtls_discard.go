package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
)

// The discard check: no record that pion/dtls drops goes unnoticed over a
// stream.
//
// pion/dtls is written for datagrams: it silently drops a record that
// fails authentication, repeats one it has seen or belongs to a later
// epoch, and goes on with the next. Over a stream nothing is lost in
// transit, so a dropped record is a deletion. dtlsSequence stops repeats
// and epoch changes before pion sees them; what is left is a record with
// the right header and a body pion rejects, altered or copied from another
// connection at the same epoch and sequence number. Two checks make that
// an error:
//
//   - pion logs each record that fails to decrypt ("decrypt failed"), on
//     the goroutine that handles it and before it asks for the next
//     record; DTLS routes that log line to reject, and the stream conn
//     answers pion's next read with the error.
//   - Without relying on a log line: after the handshake, each record
//     past epoch 1's Finished (application data or an alert, see
//     dtlsOwesResult) owes pion's Read exactly one result, its plaintext
//     or, for an alert, an error (close_notify and fatal alerts end pion's
//     reading instead). pion's reader goroutine handles records one at a
//     time, queues their results for Read in order, and asks for the next
//     record only when it is done with the last. So when pion asks for a
//     record after one that owes a result, the stream conn first answers
//     with a *dtlsProbe error carrying the count of such records handed
//     over. pion queues it behind their results (after the handshake it
//     passes read errors on to Read), and DTLS.Read, through
//     dtlsResultCount, compares: fewer results than records means pion
//     dropped one. (No probe is needed, and none is sent, when DTLS.Read
//     has already seen as many results as there were such records.)
//
// Either way the error reaches DTLS.Read behind the plaintext of every
// record before the bad one and before that of any after it.

// dtlsProbe is the error the stream conn returns to pion in place of a
// record, to count the results of the records it handed over. DTLS.Read
// consumes it; it never reaches a caller.
type dtlsProbe struct {
	owed uint64       // records handed to pion that each owe Read one result
	last dtlsRecordID // the last of them
}

func (p *dtlsProbe) Error() string { return "channel: dtls: record count probe" }

// dtlsOwesResult reports whether pion, having accepted the record, gives
// Read a result for it (see the file comment).
func dtlsOwesResult(r dtlsRecordID) bool {
	return r.epoch > 0 && (r.typ == dtlsApplicationData || r.typ == dtlsAlert)
}

// arm lets the stream conn send probes: pion passes read errors on to
// Read only once its handshake has completed, and fails the handshake on
// them before. DTLS calls it when the handshake has succeeded.
func (c *dtlsStreamConn) arm() { c.armOnce.Do(func() { close(c.armed) }) }

// reject records that pion dropped the record it is handling because it
// failed authentication (pion's log line is msg); pion's next read
// returns the error, and a read in progress returns it at once.
func (c *dtlsStreamConn) reject(msg string) {
	c.rejMu.Lock()
	defer c.rejMu.Unlock()
	if c.rejErr != nil {
		return
	}
	c.rejErr = &dtlsStreamError{why: "a record failed authentication: altered, or taken from another connection (pion: " + msg + ")", got: c.last}
	close(c.rejected)
}

// rejection returns reject's error, or nil.
func (c *dtlsStreamConn) rejection() error {
	c.rejMu.Lock()
	defer c.rejMu.Unlock()
	return c.rejErr
}

// handed notes that r goes to pion now and whether a probe must follow.
func (c *dtlsStreamConn) handed(r dtlsRecordID) {
	c.rejMu.Lock()
	c.last = r
	c.rejMu.Unlock()
	if dtlsOwesResult(r) {
		c.owed++
		c.probeDue = true
	}
}

// probe returns the probe owed after the last record, once the handshake
// has completed, or nil when DTLS.Read has already seen the results of
// all the records that owe one: then none was dropped, and pion is spared
// a round of its read loop.
func (c *dtlsStreamConn) probe() error {
	if c.results.got.Load() >= c.owed {
		c.probeDue = false
		return nil
	}
	select {
	case <-c.armed:
	case <-c.rejected:
		return c.rejection()
	case <-c.rdl.wait():
		return os.ErrDeadlineExceeded // pion's connctx cancels reads so
	case <-c.done:
		return net.ErrClosed
	}
	c.probeDue = false
	c.rejMu.Lock()
	last := c.last
	c.rejMu.Unlock()
	return &dtlsProbe{owed: c.owed, last: last}
}

// dtlsResultCount is DTLS.Read's half of the discard check: it is shown
// every return of pion's Read. Only DTLS.Read writes it; the stream conn
// reads got to skip probes that are not needed.
type dtlsResultCount struct {
	got atomic.Uint64 // results pion's Read returned: plaintexts and queued errors
}

// see accounts for one return of pion's Read (its error, nil for
// plaintext). It reports whether the return was a probe, to be skipped,
// and the error when a probe shows that records produced no result.
func (k *dtlsResultCount) see(err error) (probe bool, fail error) {
	var p *dtlsProbe
	switch {
	case err == nil:
		k.got.Add(1)
	case errors.As(err, &p):
		got := k.got.Load()
		if p.owed <= got {
			return true, nil
		}
		why := "the record produced no data: pion discarded it"
		if n := p.owed - got; n > 1 {
			why = fmt.Sprintf("%d records up to this one produced no data: pion discarded them", n)
		}
		return true, &dtlsStreamError{why: why, got: p.last}
	case err == io.EOF || isTimeout(err):
		// Not a queued result: the end of pion's reading, or its deadline.
	default:
		k.got.Add(1) // an error pion queued: an alert, or the stream conn's
	}
	return false, nil
}

// isTimeout reports whether err is a deadline or timeout error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
