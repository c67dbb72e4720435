package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/qemuvm"
	"github.com/livemig/livemig/internal/vmstream"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// drainRole is the livemig destination of qemu-tls-livemig-dest: a raw
// TLS migration.Listener that reads a QEMU stream to its end, checks every
// page of the guest's RAM against the keystream and stores nothing.
const drainRole = "qemu-drain"

// drainReport is the drain's final line.
type drainReport struct {
	Usage usage `json:"usage"`
	// EndUnixNano is the wall clock when the last byte of the stream had
	// been read and checked.
	EndUnixNano int64 `json:"end_unix_ns"`
	Pages       int64 `json:"pages"`        // distinct guest pages checked
	StreamBytes int64 `json:"stream_bytes"` // bytes of the QEMU stream
}

// drainMain is the drain role: "qemu-drain SERVER-CREDS-DIR GUEST-RAM-BYTES".
// It listens on a free loopback port over TLS (x509 server credentials
// from the directory, client certificates required), prints "ready PORT",
// accepts one channel and prints a drainReport when the stream has ended
// with every page of guest RAM present and right. Any bad, zero or missing
// page, or a malformed stream, is an error.
func drainMain(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: %s SERVER-CREDS-DIR GUEST-RAM-BYTES", drainRole)
	}
	size, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || size <= 0 || size%qemuvm.PageSize != 0 {
		return fmt.Errorf("guest RAM %q is not a positive multiple of %d", args[1], qemuvm.PageSize)
	}
	reg := crypto.NewRegistry()
	if err := reg.AddObject("tls-creds-x509,id=tls0,dir=" + args[0] + ",endpoint=server,verify-peer=on"); err != nil {
		return err
	}
	addr, err := uri.Parse("tcp:127.0.0.1:0,tls-creds=tls0")
	if err != nil {
		return err
	}
	ln, err := migration.Listen(ctx, addr, &migration.Config{Registry: reg, Raw: true})
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintf(stdout, "ready %s\n", ln.Addr().Inet.Port)
	st, err := ln.Accept(ctx)
	if err != nil {
		return fmt.Errorf("accepting QEMU's channel on %s: %w", ln.Addr(), err)
	}
	defer st.Close()
	// The reads have no deadline of their own: ctx's end unblocks them.
	defer context.AfterFunc(ctx, func() { st.Shutdown() })()
	v := newRAMVerifier(size)
	rep, err := vmstream.Parse(st, &vmstream.Options{Page: v.page})
	if err != nil {
		return fmt.Errorf("the stream from QEMU: %w", err)
	}
	end := time.Now()
	if !rep.EOF {
		return errors.New("the stream from QEMU ended without its EOF marker")
	}
	if err := v.complete(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(drainReport{Usage: selfUsage(), EndUnixNano: end.UnixNano(), Pages: v.distinct, StreamBytes: rep.Size})
}

// ramVerifier checks the pages of the guest's RAM block against the
// keystream and remembers which arrived, in one bit per page (32 KiB per
// GiB of guest).
type ramVerifier struct {
	size     int64
	seen     []uint64
	distinct int64
	check    qemuvm.PageChecker
}

// newRAMVerifier returns a verifier for a guest of size bytes.
func newRAMVerifier(size int64) *ramVerifier {
	pages := size / qemuvm.PageSize
	return &ramVerifier{size: size, seen: make([]uint64, (pages+63)/64)}
}

// page is vmstream's Options.Page.
func (v *ramVerifier) page(block string, off uint64, data []byte, fill byte) error {
	if block != qemuvm.RAMBlock {
		return nil // firmware and option ROM blocks
	}
	if off%qemuvm.PageSize != 0 || off >= uint64(v.size) {
		return fmt.Errorf("page at 0x%x of block %s: outside the %d-byte guest RAM or misaligned", off, block, v.size)
	}
	if data == nil {
		return fmt.Errorf("zero page (fill 0x%02x) at 0x%x: the keystream has none", fill, off)
	}
	if !v.check.Check(off, data) {
		return fmt.Errorf("page at 0x%x does not hold the keystream", off)
	}
	i := off / qemuvm.PageSize
	if v.seen[i/64]&(1<<(i%64)) == 0 {
		v.seen[i/64] |= 1 << (i % 64)
		v.distinct++
	}
	return nil
}

// complete returns an error naming the first missing page, if any.
func (v *ramVerifier) complete() error {
	want := v.size / qemuvm.PageSize
	if v.distinct == want {
		return nil
	}
	for i := int64(0); i < want; i++ {
		if v.seen[i/64]&(1<<(i%64)) == 0 {
			return fmt.Errorf("%d of %d guest pages never arrived, the first at 0x%x", want-v.distinct, want, i*qemuvm.PageSize)
		}
	}
	return fmt.Errorf("%d distinct pages counted, want %d", v.distinct, want)
}
