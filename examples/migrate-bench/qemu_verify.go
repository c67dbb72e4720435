package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/livemig/livemig/internal/qemuvm"
)

// A destination QEMU checks nothing of the pages it loads, so after a
// QEMU-to-QEMU run (outside its timing window) the tool reads the
// destination guest's RAM back with QMP's pmemsave, through a FIFO so
// that nothing is stored, and checks every page against the keystream:
// a proxy or a transport that changed a page's bytes fails the run.

// pcLegacyHole is the guest-physical range of the pc machine where VGA
// and BIOS shadow regions cover RAM, so pmemsave does not read the RAM
// behind it there; its pages are skipped (96 pages).
const pcLegacyHoleStart, pcLegacyHoleEnd = 0xa0000, 0x100000

// pcBelow4G and pcLowMem are the pc machine's RAM split: a guest of
// pcBelow4G bytes or more has its first pcLowMem bytes at guest-physical
// 0 and the rest at 4 GiB; a smaller one has all of it at 0.
const (
	pcBelow4G = 0xe0000000
	pcLowMem  = 0xc0000000
)

// verifyGuestRAM checks that every page of vm's guest RAM (size bytes,
// RAM block offsets 0..size) holds the keystream, except the legacy hole.
// dir is where the FIFO is made.
func verifyGuestRAM(ctx context.Context, vm *qemuvm.VM, dir string, size int64) error {
	fifo := filepath.Join(dir, "guest-ram.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return fmt.Errorf("checking the destination's guest RAM: mkfifo %s: %w", fifo, err)
	}
	defer os.Remove(fifo)
	// Read-write: the open does not wait for QEMU, and a pmemsave that
	// fails before opening it leaves no reader blocked.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("checking the destination's guest RAM: %w", err)
	}
	defer f.Close()
	type span struct{ phys, off, n int64 }
	spans := []span{{0, 0, size}}
	if size >= pcBelow4G {
		spans = []span{{0, 0, pcLowMem}, {1 << 32, pcLowMem, size - pcLowMem}}
	}
	for _, s := range spans {
		checked := make(chan error, 1)
		go func() { checked <- checkRAMSpan(f, s.off, s.n) }()
		_, err := vm.QMP.Execute(ctx, "pmemsave", map[string]any{"val": s.phys, "size": s.n, "filename": fifo})
		if err != nil {
			f.Close() // ends checkRAMSpan's read
			<-checked
			return fmt.Errorf("checking the destination's guest RAM: pmemsave of 0x%x bytes at 0x%x: %w", s.n, s.phys, err)
		}
		select {
		case err = <-checked:
		case <-ctx.Done():
			f.Close()
			<-checked
			err = ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("checking the destination's guest RAM: %w", err)
		}
	}
	return nil
}

// checkRAMSpan reads n bytes of guest RAM, from RAM block offset off, from
// r and checks each page against the keystream. It reads all n bytes even
// after a bad page, so that QEMU is never left blocked writing, and
// returns the first bad page.
func checkRAMSpan(r io.Reader, off, n int64) error {
	var c qemuvm.PageChecker
	buf := make([]byte, 1<<20)
	var bad error
	for done := int64(0); done < n; {
		b := buf[:min(int64(len(buf)), n-done)]
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, os.ErrClosed) && bad != nil {
				return bad
			}
			return fmt.Errorf("reading guest RAM at offset 0x%x: %w", off+done, err)
		}
		for p := 0; p < len(b) && bad == nil; p += qemuvm.PageSize {
			at := off + done + int64(p)
			if at >= pcLegacyHoleStart && at < pcLegacyHoleEnd {
				continue
			}
			if !c.Check(uint64(at), b[p:p+qemuvm.PageSize]) {
				bad = fmt.Errorf("guest page at 0x%x does not hold the keystream the source sent", at)
			}
		}
		done += int64(len(b))
	}
	return bad
}
