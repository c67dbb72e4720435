package channel

import (
	"io"
	"net"
	"os"
	"time"
)

// Channel is a bidirectional byte stream (API STUB: the channel helper owns
// this file and may refine docs, not signatures, without telling others).
type Channel interface {
	io.ReadWriteCloser
	// WriteBuffers writes all of bufs or returns an error, like
	// net.Buffers.WriteTo; it consumes bufs.
	WriteBuffers(bufs *net.Buffers) (int64, error)
	// Shutdown stops one or both directions.
	Shutdown(how Direction) error
	// Name describes the channel for errors and logs.
	Name() string
}

// Direction selects one or both directions of a Channel.
type Direction int

// Directions, a bitmask as in QEMU.
const (
	Read  Direction = 1
	Write Direction = 2
	Both  Direction = Read | Write
)

// FDPasser is implemented by unix-socket channels.
type FDPasser interface {
	// WriteFiles writes p with files attached to its first byte.
	WriteFiles(p []byte, files []*os.File) (int, error)
	// ReadFiles reads into p and returns up to maxFiles received files.
	ReadFiles(p []byte, maxFiles int) (n int, files []*os.File, err error)
}

// ZeroCopyWriter is implemented by sockets that can send with MSG_ZEROCOPY.
type ZeroCopyWriter interface {
	// WriteBuffersZeroCopy queues bufs; the memory must stay unchanged
	// until Flush returns.
	WriteBuffersZeroCopy(bufs *net.Buffers) (int64, error)
	// Flush waits for the kernel to release every queued buffer.
	Flush() error
}

// Deadliner is implemented by channels with deadlines.
type Deadliner interface {
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// NetConner is implemented by channels built on a net.Conn.
type NetConner interface {
	NetConn() net.Conn
}
