package vmstream

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Mapped-ram layout constants (migration/ram.c: MAPPED_RAM_HDR_VERSION,
// the packed MappedRamHeader, MAPPED_RAM_FILE_OFFSET_ALIGNMENT).
const (
	mappedRAMVersion = 1
	// QEMU starts each block's pages at the first multiple of 1 MiB
	// after its bitmap. Its loader checks only page alignment, to leave
	// room for change, and so does this reader; the value only tells a
	// truncated file from a damaged pages offset.
	qemuPagesAlign = 1 << 20
)

// mappedChunk bounds what one ReadAt of a bitmap or of pages asks for, so
// that memory stays constant whatever sizes the file claims.
const mappedChunk = 256 << 10

// mappedBlock reads the mapped-ram header that follows block b's entry in
// MEM_SIZE, checks its bitmap and pages region against the file, passes
// every page whose bit is set to Options.Page, and moves the stream to
// where QEMU resumes it: right after the block's pages region
// (mapped_ram_setup_ramblock and parse_ramblock_mapped_ram in
// migration/ram.c). lenAt is the offset of the block's length field.
func (p *parser) mappedBlock(b *Block, lenAt int64) error {
	hdrAt := p.off
	if p.ra == nil {
		return p.errAt(hdrAt, "ram block %s is mapped-ram: its pages are in the file around the stream, so it needs a seekable input (ParseFile), not a pipe", b.Name)
	}
	version, err := p.be32("mapped-ram header version")
	if err != nil {
		return err
	}
	if version != mappedRAMVersion {
		return p.errAt(hdrAt, "ram block %s: mapped-ram header version %d, want %d", b.Name, version, mappedRAMVersion)
	}
	psAt := p.off
	pageSize, err := p.be64("mapped-ram page size")
	if err != nil {
		return err
	}
	if pageSize != p.pageSize {
		return p.errAt(psAt, "ram block %s: mapped-ram page size %d, the stream's is %d", b.Name, pageSize, p.pageSize)
	}
	bmAt := p.off
	bmOff, err := p.be64("mapped-ram bitmap offset")
	if err != nil {
		return err
	}
	pgAt := p.off
	pgOff, err := p.be64("mapped-ram pages offset")
	if err != nil {
		return err
	}
	hdrEnd := p.off
	m := &MappedRAMBlock{HeaderOffset: hdrAt, PageSize: pageSize, BitmapOffset: bmOff, PagesOffset: pgOff}
	b.MappedRAM = m
	if p.rep.RAM.IgnoreShared && bmOff == 0 && pgOff == 0 {
		// A shared block that x-ignore-shared keeps out of the file: the
		// stream goes on right after the header.
		m.Ignored = true
		return nil
	}
	if b.Size%p.pageSize != 0 {
		return p.errAt(lenAt, "ram block %s: length 0x%x is not a whole number of %d-byte pages", b.Name, b.Size, p.pageSize)
	}
	nPages := b.Size / p.pageSize
	// One bit per page, in whole host longs (BITS_TO_LONGS): 64-bit
	// words on the 64-bit hosts this reader supports.
	m.BitmapSize = (nPages + 63) / 64 * 8
	size := uint64(p.size)

	// The bitmap follows the header, the pages follow the bitmap, both
	// inside the file. A field QEMU would not write is blamed; a region
	// that runs past the end of the file, where QEMU's layout puts it,
	// is a truncated file, reported where the file ends.
	bmEnd := bmOff + m.BitmapSize
	qemuPages := (bmEnd + qemuPagesAlign - 1) / qemuPagesAlign * qemuPagesAlign
	switch {
	case bmOff != uint64(hdrEnd):
		return p.errAt(bmAt, "ram block %s: mapped-ram bitmap offset 0x%x, want 0x%x: right after its header", b.Name, bmOff, hdrEnd)
	case size-bmOff < m.BitmapSize:
		return p.errAt(int64(size), "file ends inside the mapped-ram bitmap of ram block %s (0x%x..0x%x)", b.Name, bmOff, bmEnd)
	case pgOff%p.pageSize != 0:
		return p.errAt(pgAt, "ram block %s: mapped-ram pages offset 0x%x is not aligned to the %d-byte page", b.Name, pgOff, p.pageSize)
	case pgOff < bmEnd:
		return p.errAt(pgAt, "ram block %s: mapped-ram pages offset 0x%x overlaps its bitmap (0x%x..0x%x)", b.Name, pgOff, bmOff, bmEnd)
	case pgOff > size && pgOff != qemuPages:
		return p.errAt(pgAt, "ram block %s: mapped-ram pages offset 0x%x is beyond the end of the file (0x%x)", b.Name, pgOff, size)
	case pgOff > size:
		return p.errAt(int64(size), "file ends before the pages of ram block %s (0x%x..0x%x)", b.Name, pgOff, pgOff+b.Size)
	case size-pgOff < b.Size:
		return p.errAt(int64(size), "file ends inside the pages of ram block %s (0x%x..0x%x)", b.Name, pgOff, pgOff+b.Size)
	}
	// bmOff+BitmapSize <= pgOff <= size: the bitmap is inside the file.
	if err := p.mappedPages(b, int64(bmOff), int64(pgOff), nPages); err != nil {
		return err
	}
	p.jump(int64(pgOff + b.Size))
	return nil
}

// mappedPages reads block b's bitmap at bmOff, counts present and absent
// pages, and passes each present page (read at pgOff) to Options.Page.
// Consecutive present pages are read together, up to mappedChunk bytes
// at a time, not with one read each.
func (p *parser) mappedPages(b *Block, bmOff, pgOff int64, nPages uint64) error {
	m := b.MappedRAM
	buf := make([]byte, min(m.BitmapSize, mappedChunk))
	r := pageRun{p: p, b: b, pgOff: pgOff}
	var page uint64 // index of the first page of buf
	for done := uint64(0); done < m.BitmapSize; done += uint64(len(buf)) {
		chunk := buf[:min(uint64(len(buf)), m.BitmapSize-done)]
		at := bmOff + int64(done)
		if err := p.readAt(chunk, at, "mapped-ram bitmap of ram block "+b.Name); err != nil {
			return err
		}
		for i, c := range chunk {
			if c == 0 {
				page += 8
				continue
			}
			// Little-endian words: bit k of the byte is page 8*i+k.
			for c != 0 {
				k := uint64(bits.TrailingZeros8(c))
				c &= c - 1
				n := page + k
				if n >= nPages {
					return p.errAt(at+int64(i), "ram block %s: mapped-ram bitmap marks page %d, past the block's %d pages", b.Name, n, nPages)
				}
				b.Pages++
				if err := r.add(n); err != nil {
					return err
				}
			}
			page += 8
		}
	}
	b.ZeroPages = nPages - b.Pages
	return r.flush()
}

// pageRun gathers consecutive present pages of a mapped-ram block, to
// read them from the pages region with one ReadAt and pass them on to
// Options.Page one by one. Without a callback nothing is read: the region
// is known to lie inside the file.
type pageRun struct {
	p     *parser
	b     *Block
	pgOff int64  // the block's pages region
	first uint64 // the run's first page
	n     uint64 // pages in the run
	buf   []byte
}

// add appends page n to the run, reading and passing on the run so far
// when n does not continue it or the run is full.
func (r *pageRun) add(n uint64) error {
	if r.p.opts.Page == nil {
		return nil
	}
	if r.n > 0 && (n != r.first+r.n || (r.n+1)*r.p.pageSize > mappedChunk) {
		if err := r.flush(); err != nil {
			return err
		}
	}
	if r.n == 0 {
		r.first = n
	}
	r.n++
	return nil
}

// flush reads the run's pages and passes each to Options.Page.
func (r *pageRun) flush() error {
	if r.n == 0 {
		return nil
	}
	ps := r.p.pageSize
	size := r.n * ps
	if uint64(cap(r.buf)) < size {
		r.buf = make([]byte, max(size, min(mappedChunk, 16*ps)))
	}
	data := r.buf[:size]
	at := r.pgOff + int64(r.first*ps)
	if err := r.p.readAt(data, at, "mapped-ram page of ram block "+r.b.Name); err != nil {
		return err
	}
	for i := uint64(0); i < r.n; i++ {
		addr := (r.first + i) * ps
		if err := r.p.callPage(at+int64(i*ps), r.b.Name, addr, data[i*ps:(i+1)*ps], 0); err != nil {
			return err
		}
	}
	r.n = 0
	return nil
}

// readAt fills buf from file offset at. A short file is reported where its
// data ends.
func (p *parser) readAt(buf []byte, at int64, what string) error {
	n, err := p.ra.ReadAt(buf, at)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return &Error{Offset: at + int64(n), Reason: "file ends inside " + what}
	}
	return &Error{Offset: at + int64(n), Reason: fmt.Sprintf("reading %s", what), Err: err}
}
