package channel

import (
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// Channel is a bidirectional byte stream: a socket, a file, a child process
// or a memory buffer, possibly wrapped in TLS. It is the QIOChannel of QEMU
// reduced to what a migration stream needs.
//
// Concurrency: one goroutine may call Read (or ReadFiles) while another
// calls Write, WriteBuffers (or the other write-side methods) at the same
// time. Two concurrent readers, or two concurrent writers, are not allowed
// unless an implementation says so. Close and Shutdown may be called from
// any goroutine at any time: Close unblocks a pending Read and a pending
// Write, which then return an error wrapping [net.ErrClosed]; every later
// Read, Write or WriteBuffers also returns such an error. Close may be called
// more than once; calls after the first return nil or an error wrapping
// net.ErrClosed, and never block for long or panic.
//
// Errors other than io.EOF are returned as [*OpError] (or, for a
// [*Command]'s Close, [*ExitError]); Read returns io.EOF itself, unwrapped,
// when the peer has shut down its write direction.
type Channel interface {
	// Read reads up to len(p) bytes, following io.Reader's contract. It
	// returns io.EOF once the peer has shut down its write direction (or
	// this side its read direction) and every byte before that was read.
	Read(p []byte) (n int, err error)

	// Write writes all of p or returns an error, following io.Writer's
	// contract.
	Write(p []byte) (n int, err error)

	// Close releases the channel. See the type doc for its concurrency
	// rules.
	Close() error

	// WriteBuffers writes the contents of every slice in *bufs, in order,
	// and returns the number of bytes written. It writes all of the bytes
	// or returns an error, like net.Buffers.WriteTo. Like WriteTo it
	// consumes *bufs: on return *bufs holds what was not written (nothing
	// on success), and the elements it consumed are set to nil in the
	// backing array. A caller that sends the same slices again therefore
	// keeps a template and copies it into a reused working slice before
	// each call; declared outside the loop, that costs no allocation.
	//
	// The memory of the slices is not retained after WriteBuffers returns
	// (see [ZeroCopyWriter] for the exception). Sockets write without
	// copying, with one writev per call unless the kernel accepts only part
	// of the data or there are more than 1024 slices.
	WriteBuffers(bufs *net.Buffers) (int64, error)

	// Shutdown stops one or both directions. After Shutdown(Write) the peer
	// reads io.EOF once it has read everything written before, and this
	// side's writes fail; the other direction keeps working. After
	// Shutdown(Read) this side's reads return io.EOF. Shutdown does not
	// release the channel: call Close as well.
	Shutdown(how Direction) error

	// Name describes the channel for errors and logs, as in
	// "tcp 127.0.0.1:4444->127.0.0.1:38920".
	Name() string
}

// Direction selects one or both directions of a Channel.
type Direction int

// Directions, a bitmask as QEMU's QIOChannelShutdown (READ=1, WRITE=2,
// BOTH=3).
const (
	Read  Direction = 1
	Write Direction = 2
	Both  Direction = Read | Write
)

// String returns "read", "write", "both" or "Direction(N)".
func (d Direction) String() string {
	switch d {
	case Read:
		return "read"
	case Write:
		return "write"
	case Both:
		return "both"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

func (d Direction) valid() bool { return d >= Read && d <= Both }

// FDPasser is implemented by channels that can carry open files alongside
// bytes: [*Socket] over a unix socket (SCM_RIGHTS). QEMU uses this for fd:
// migration and for passing memory-backend file descriptors; a migration
// proxy uses it to hand accepted connections to another process.
//
// On a Socket that is not a unix socket both methods return an error
// wrapping errors.ErrUnsupported.
type FDPasser interface {
	// WriteFiles writes p (at least one byte when files is not empty) with
	// files attached to its first byte. It writes all of p or returns an
	// error. The caller still owns files and may close them on return.
	WriteFiles(p []byte, files []*os.File) (int, error)

	// ReadFiles reads into p and returns the bytes read and the files that
	// arrived with them, at most maxFiles (between 1 and [MaxFiles]). Files
	// beyond maxFiles are closed by the kernel and reported as an error.
	// Received files are close-on-exec and owned by the caller.
	ReadFiles(p []byte, maxFiles int) (n int, files []*os.File, err error)
}

// MaxFiles is the largest number of files one ReadFiles or WriteFiles call
// carries, as in QEMU's socket channel.
const MaxFiles = 16

// ZeroCopyWriter is implemented by channels that can send without copying
// into the kernel: [*Socket] over tcp on Linux (SO_ZEROCOPY and
// MSG_ZEROCOPY). The migration stream uses it for guest pages when
// zero-copy-send is enabled, as QEMU's multifd does.
//
// Where the kernel refuses zero-copy the methods fall back to ordinary
// copying writes, and Flush returns at once.
type ZeroCopyWriter interface {
	// WriteBuffersZeroCopy writes bufs like WriteBuffers but lets the
	// kernel send from the caller's memory: the bytes must stay unchanged
	// until a later Flush returns.
	WriteBuffersZeroCopy(bufs *net.Buffers) (int64, error)

	// Flush waits until the kernel has released every buffer queued by
	// WriteBuffersZeroCopy. It blocks like Write (the kernel releases the
	// memory once the peer has acknowledged the data) and honours the write
	// deadline and Close.
	Flush() error
}

// Deadliner is implemented by channels with deadlines, with the meaning of
// net.Conn's methods of the same names. The migration package uses it to
// bound handshakes and hello exchanges; a deadline that passes makes the
// pending call fail with an error whose Timeout method reports true and
// that wraps os.ErrDeadlineExceeded.
type Deadliner interface {
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// NetConner is implemented by channels built on a net.Conn, as
// tls.Conn.NetConn is: the TLS wrappers and tests use it to reach the
// connection underneath. Reading or writing the returned conn directly
// bypasses the channel.
type NetConner interface {
	NetConn() net.Conn
}

// Positional I/O: [*File] and [*Buffer] also implement io.ReaderAt,
// io.WriterAt and io.Seeker.
var (
	_ io.ReaderAt = (*File)(nil)
	_ io.WriterAt = (*File)(nil)
	_ io.ReaderAt = (*Buffer)(nil)
	_ io.WriterAt = (*Buffer)(nil)
)
