package vmstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// handFile is a mapped-ram file made by hand, laid out as QEMU 10.0 lays
// out its files (mapped_ram_setup_ramblock in migration/ram.c), except
// that the pages start at the next page boundary instead of the next
// MiB, to keep it small: pad zero bytes, then the stream (header,
// CONFIGURATION with the mapped-ram capability, START ram with one block
// "m" of len(present) pages, its mapped-ram header, bitmap and pages, EOS,
// footer, EOF). Page i holds the byte i+1 when present.
type handFile struct {
	b                        []byte
	hdr, bitmap, pages, tail int // offsets: header version field, bitmap, page 0, stream after the pages
}

func makeHandFile(pad int, present []bool, ignoreShared bool) handFile {
	var h handFile
	b := make([]byte, pad)
	b = append(b, 0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3)
	b = append(b, 7, 0, 0, 0, 2, 'p', 'c')
	const sub = "configuration/capabilities"
	b = append(b, 5, byte(len(sub)))
	b = append(b, sub...)
	caps := []string{"mapped-ram"}
	if ignoreShared {
		caps = append(caps, "x-ignore-shared")
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(len(caps)))
	for _, c := range caps {
		b = append(append(b, byte(len(c))), c...)
	}
	b = append(b, 1, 0, 0, 0, 2, 3, 'r', 'a', 'm', 0, 0, 0, 0, 0, 0, 0, 4)
	size := uint64(len(present)) * 4096
	b = binary.BigEndian.AppendUint64(b, size|RAMMemSize)
	b = append(b, 1, 'm')
	b = binary.BigEndian.AppendUint64(b, size)
	if ignoreShared {
		b = binary.BigEndian.AppendUint64(b, 0) // guest address
	}
	h.hdr = len(b)
	h.bitmap = h.hdr + 28
	bmSize := (len(present) + 63) / 64 * 8
	h.pages = (h.bitmap + bmSize + 4095) / 4096 * 4096
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, 4096)
	b = binary.BigEndian.AppendUint64(b, uint64(h.bitmap))
	b = binary.BigEndian.AppendUint64(b, uint64(h.pages))
	b = append(b, make([]byte, h.pages-len(b)+int(size))...)
	for i, ok := range present {
		if ok {
			b[h.bitmap+i/8] |= 1 << (i % 8)
			copy(b[h.pages+i*4096:], bytes.Repeat([]byte{byte(i + 1)}, 4096))
		}
	}
	h.tail = len(b)
	b = binary.BigEndian.AppendUint64(b, RAMEOS)
	b = append(b, 0x7e, 0, 0, 0, 2, 0) // footer, EOF
	h.b = b
	return h
}

func parseFile(b []byte, start int64, opts *Options) (*Report, error) {
	return ParseFile(bytes.NewReader(b), start, int64(len(b)), opts)
}

func wantFileErrAt(t *testing.T, b []byte, start, off int64, reason string) {
	t.Helper()
	_, err := parseFile(b, start, nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error at %d", err, off)
	}
	if e.Offset != off || !strings.Contains(e.Error(), reason) {
		t.Fatalf("err = %v, want offset %d and %q", err, off, reason)
	}
}

// TestMappedRAMHandmade reads a small mapped-ram file at an offset, and
// checks that it calls Page for exactly the present pages with their
// bytes, and counts the rest as zero pages.
func TestMappedRAMHandmade(t *testing.T) {
	present := make([]bool, 70) // two bitmap words, the second partly used
	for _, i := range []int{0, 3, 63, 64, 69} {
		present[i] = true
	}
	const pad = 4096
	h := makeHandFile(pad, present, false)
	got := map[uint64]bool{}
	rep, err := parseFile(h.b, pad, &Options{Page: func(block string, off uint64, data []byte, fill byte) error {
		i := off / 4096
		if block != "m" || off%4096 != 0 || len(data) != 4096 || !bytes.Equal(data, bytes.Repeat([]byte{byte(i + 1)}, 4096)) {
			return fmt.Errorf("page %s+0x%x is wrong", block, off)
		}
		got[i] = true
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !got[0] || !got[3] || !got[63] || !got[64] || !got[69] {
		t.Fatalf("pages seen %v", got)
	}
	bl := rep.RAM.Blocks[0]
	want := MappedRAMBlock{HeaderOffset: int64(h.hdr), PageSize: 4096, BitmapOffset: uint64(h.bitmap), BitmapSize: 16, PagesOffset: uint64(h.pages)}
	if bl.Pages != 5 || bl.ZeroPages != 65 || bl.MappedRAM == nil || *bl.MappedRAM != want {
		t.Fatalf("block %+v %+v, want 5 pages, 65 zero, %+v", bl, bl.MappedRAM, want)
	}
	if !rep.RAM.MappedRAM || rep.Start != pad || rep.Size != int64(len(h.b)-pad) || !rep.EOF || rep.EOFOffset != int64(len(h.b)-1) {
		t.Fatalf("report %+v", rep)
	}
	// A page the callback refuses is reported at its file offset.
	_, err = parseFile(h.b, pad, &Options{Page: func(string, uint64, []byte, byte) error { return errors.New("no") }})
	var e *Error
	if !errors.As(err, &e) || e.Offset != int64(h.pages) {
		t.Fatalf("err = %v, want *Error at the first page, %d", err, h.pages)
	}
}

// TestMappedRAMDamaged damages each field of the handmade file and checks
// the offset and reason of the error.
func TestMappedRAMDamaged(t *testing.T) {
	present := make([]bool, 70)
	present[1], present[69] = true, true
	h := makeHandFile(0, present, false)
	put64 := func(off int, v uint64) []byte {
		c := bytes.Clone(h.b)
		binary.BigEndian.PutUint64(c[off:], v)
		return c
	}
	bm, pg := h.hdr+12, h.hdr+20
	for _, tc := range []struct {
		name   string
		b      []byte
		off    int
		reason string
	}{
		{"version 2", func() []byte { c := bytes.Clone(h.b); c[h.hdr+3] = 2; return c }(), h.hdr, "header version 2, want 1"},
		{"page size", put64(h.hdr+4, 8192), h.hdr + 4, "page size 8192"},
		{"bitmap offset back", put64(bm, uint64(h.hdr)), bm, "bitmap offset"},
		{"bitmap offset forward", put64(bm, uint64(h.bitmap+8)), bm, "right after its header"},
		{"bitmap offset beyond the file", put64(bm, 1<<62), bm, "bitmap offset"},
		{"pages offset not aligned", put64(pg, uint64(h.pages+1)), pg, "not aligned"},
		{"pages offset in the bitmap", put64(pg, uint64(h.bitmap)&^4095), pg, "overlaps its bitmap"},
		{"pages offset beyond the file", put64(pg, 1<<40), pg, "beyond the end of the file"},
		{"truncated before the pages", put64(pg, 1<<20), len(h.b), "file ends before the pages of ram block m"},
		{"bit past the last page", func() []byte { c := bytes.Clone(h.b); c[h.bitmap+9] |= 0x40; return c }(), h.bitmap + 9, "marks page 78, past the block's 70 pages"},
		{"truncated in the pages", h.b[:h.pages+4096+10], h.pages + 4096 + 10, "file ends inside the pages of ram block m"},
		{"truncated at the pages", h.b[:h.pages], h.pages, "file ends inside the pages"},
		{"truncated in the bitmap", h.b[:h.bitmap+3], h.bitmap + 3, "file ends inside the mapped-ram bitmap"},
		{"truncated in the header", h.b[:h.hdr+13], h.hdr + 13, "stream ends inside mapped-ram bitmap offset"},
		{"truncated after the pages", h.b[:h.tail+3], h.tail + 3, "stream ends inside ram record"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantFileErrAt(t, tc.b, 0, int64(tc.off), tc.reason) })
	}
	t.Run("from a pipe", func(t *testing.T) {
		_, err := Parse(bytes.NewReader(h.b), nil)
		var e *Error
		if !errors.As(err, &e) || e.Offset != int64(h.hdr) || !strings.Contains(err.Error(), "seekable") {
			t.Fatalf("err = %v, want *Error at %d saying it needs a seekable input", err, h.hdr)
		}
	})
	t.Run("start outside the file", func(t *testing.T) { wantFileErrAt(t, h.b, int64(len(h.b)+1), int64(len(h.b)+1), "outside the file") })
	t.Run("start at the wrong offset", func(t *testing.T) { wantFileErrAt(t, h.b, 1, 1, "magic") })
}

// TestMappedRAMIgnored: with x-ignore-shared, QEMU 11.0 writes bitmap and
// pages offsets 0 for a shared block, and the stream goes on after the
// header. Without x-ignore-shared the same header is refused.
func TestMappedRAMIgnored(t *testing.T) {
	h := makeHandFile(0, make([]bool, 2), true)
	c := bytes.Clone(h.b[:h.hdr+28])
	binary.BigEndian.PutUint64(c[h.hdr+12:], 0)
	binary.BigEndian.PutUint64(c[h.hdr+20:], 0)
	c = append(c, h.b[h.tail:]...)
	rep, err := parseFile(c, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bl := rep.RAM.Blocks[0]; bl.MappedRAM == nil || !bl.MappedRAM.Ignored || bl.Pages != 0 || !rep.RAM.IgnoreShared {
		t.Fatalf("block %+v", bl)
	}
	// Without x-ignore-shared, offsets 0 are a damaged header.
	h = makeHandFile(0, make([]bool, 2), false)
	c = bytes.Clone(h.b[:h.hdr+28])
	binary.BigEndian.PutUint64(c[h.hdr+12:], 0)
	binary.BigEndian.PutUint64(c[h.hdr+20:], 0)
	c = append(c, h.b[h.tail:]...)
	wantFileErrAt(t, c, 0, int64(h.hdr+12), "bitmap offset 0x0")
}

// TestMappedRAMHugeBlock: a block length of 2^50 bytes with a header that
// points inside the file is refused as a truncated file before anything
// of its size is allocated.
func TestMappedRAMHugeBlock(t *testing.T) {
	h := makeHandFile(0, make([]bool, 1), false)
	c := bytes.Clone(h.b)
	const huge = 1 << 50
	i := bytes.Index(c, []byte{1, 'm'})
	binary.BigEndian.PutUint64(c[i-8:], huge|RAMMemSize)
	binary.BigEndian.PutUint64(c[i+2:], huge)
	// The bitmap of 2^38 pages is 2^35 bytes: it does not fit.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	wantFileErrAt(t, c, 0, int64(len(c)), "file ends inside the mapped-ram bitmap")
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Fatalf("parsing %d bytes allocated %d bytes", len(c), d)
	}
}

// FuzzParseFile: the file reader, mapped-ram included, never panics, and
// every error is an *Error pointing inside the file (or just past it).
func FuzzParseFile(f *testing.F) {
	present := []bool{true, false, true}
	f.Add(makeHandFile(0, present, false).b, uint16(0))         // a valid mapped-ram file
	f.Add(makeHandFile(16, present, false).b, uint16(16))       // the same at an offset
	f.Add(makeHandFile(0, make([]bool, 65), true).b, uint16(0)) // x-ignore-shared, a second bitmap word
	h := makeHandFile(0, present, true)
	ign := bytes.Clone(h.b[:h.hdr+28])
	binary.BigEndian.PutUint64(ign[h.hdr+12:], 0)
	binary.BigEndian.PutUint64(ign[h.hdr+20:], 0)
	f.Add(append(ign, h.b[h.tail:]...), uint16(0)) // an ignored shared block
	f.Add(readGolden(f)[:4096], uint16(0))         // the start of a real plain stream
	f.Fuzz(func(t *testing.T, b []byte, start uint16) {
		s := int64(start) % int64(len(b)+1)
		rep, err := parseFile(b, s, &Options{MaxDeviceSection: 1 << 16, MaxVMDesc: 1 << 16,
			Page: func(block string, off uint64, data []byte, fill byte) error {
				if data != nil && (len(data) < 512 || len(data) > 64<<10) {
					t.Fatalf("page of %d bytes", len(data))
				}
				return nil
			}})
		if rep == nil || rep.Start != s || rep.Size < 0 || rep.Start+rep.Size > int64(len(b)) {
			t.Fatalf("report %+v for %d bytes from %d", rep, len(b), s)
		}
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Offset < 0 || e.Offset > int64(len(b)) {
			t.Fatalf("err %v outside the file of %d bytes", err, len(b))
		}
	})
}
