package vmstream

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/livemig/livemig/internal/qemutest"
)

// The QEMU tests below make their files with real QEMU at test time, on
// each installed QEMU, from a 16 MiB keystream guest whose RAM block
// qemutest.RAMBlock is a memory-backend-file with share=on.
const qemuMem = 16 << 20

// keystreamPages returns Options whose Page checks every page of the
// guest's RAM block against the keystream, and the set of its pages seen.
func keystreamPages() (*Options, map[uint64]bool) {
	var c qemutest.PageChecker
	seen := map[uint64]bool{}
	return &Options{Page: func(block string, off uint64, data []byte, fill byte) error {
		if block != qemutest.RAMBlock {
			return nil
		}
		if data == nil || !c.Check(off, data) {
			return errors.New("page does not hold the keystream")
		}
		seen[off] = true
		return nil
	}}, seen
}

func parsePath(t *testing.T, path string, start int64, opts *Options) (*Report, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return ParseFile(f, start, fi.Size(), opts)
}

func blockNamed(t *testing.T, rep *Report, name string) Block {
	t.Helper()
	for _, b := range rep.RAM.Blocks {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no ram block %s in %+v", name, rep.RAM.Blocks)
	return Block{}
}

// TestIgnoreShared: with x-ignore-shared, QEMU 7.2 and 10.0 name the
// capability in the configuration section, add each block's guest address
// to MEM_SIZE, and send no page of the shared block.
func TestIgnoreShared(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		vm := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: qemuMem})
		path := filepath.Join(t.TempDir(), "stream")
		vm.Save(t, map[string]bool{"x-ignore-shared": true}, "exec:cat > "+path)
		rep, err := parsePath(t, path, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(rep.Configuration.Capabilities, "x-ignore-shared") || !rep.RAM.IgnoreShared || !rep.EOF {
			t.Fatalf("configuration %+v, ram %+v, EOF %v", rep.Configuration, rep.RAM, rep.EOF)
		}
		if b := blockNamed(t, rep, qemutest.RAMBlock); b.Size != qemuMem || b.Pages+b.ZeroPages != 0 || b.GuestAddr != 0 {
			t.Errorf("shared block %+v, want no page at guest address 0", b)
		}
		if b := blockNamed(t, rep, "pc.bios"); b.Pages == 0 || b.GuestAddr != 0xfffc0000 {
			t.Errorf("pc.bios %+v, want pages at guest address 0xfffc0000", b)
		}
		if rep.RAM.Pages == 0 {
			t.Errorf("no PAGE records at all")
		}
	})
}

// TestMappedRAM: QEMU 10.0 writes mapped-ram files (to file:PATH, also with
// multifd, also at an offset); every page of the guest's block is in the
// file and holds the keystream, and damaged copies are refused at the
// right offset. QEMU 7.2 has no mapped-ram.
func TestMappedRAM(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		if !q.AtLeast(9, 0) {
			t.Skipf("%s has no mapped-ram capability (QEMU 9.0 and later)", q)
		}
		for _, tc := range []struct {
			name  string
			caps  map[string]bool
			start int64
		}{
			{"mapped-ram", map[string]bool{"mapped-ram": true}, 0},
			{"mapped-ram+multifd", map[string]bool{"mapped-ram": true, "multifd": true}, 0},
			{"mapped-ram at offset 0x3000", map[string]bool{"mapped-ram": true}, 0x3000},
		} {
			t.Run(tc.name, func(t *testing.T) { mappedRAM(t, q, tc.caps, tc.start) })
		}
	})
}

func mappedRAM(t *testing.T, q qemutest.QEMU, caps map[string]bool, start int64) {
	vm := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: qemuMem})
	path := filepath.Join(t.TempDir(), "vm.state")
	vm.Save(t, caps, fmt.Sprintf("file:%s,offset=%d", path, start))
	opts, seen := keystreamPages()
	rep, err := parsePath(t, path, start, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != qemuMem/qemutest.PageSize {
		t.Fatalf("%d pages of %s checked, want %d", len(seen), qemutest.RAMBlock, qemuMem/qemutest.PageSize)
	}
	if !rep.RAM.MappedRAM || !rep.EOF || rep.VMDesc == nil || rep.Start != start || rep.Configuration.Offset != start+8 {
		t.Fatalf("report: mapped-ram %v, EOF %v, start %d, configuration at %d", rep.RAM.MappedRAM, rep.EOF, rep.Start, rep.Configuration.Offset)
	}
	m := blockNamed(t, rep, qemutest.RAMBlock)
	mr := m.MappedRAM
	if m.Pages != qemuMem/qemutest.PageSize || m.ZeroPages != 0 || mr == nil || mr.PagesOffset%(1<<20) != 0 ||
		mr.BitmapOffset != uint64(mr.HeaderOffset)+28 || mr.BitmapSize != qemuMem/qemutest.PageSize/8 {
		t.Fatalf("block %+v %+v", m, mr)
	}
	for _, b := range rep.RAM.Blocks {
		if b.MappedRAM == nil || b.Pages+b.ZeroPages != b.Size/qemutest.PageSize {
			t.Errorf("block %+v %+v: pages and zero pages do not add up", b, b.MappedRAM)
		}
	}
	if rep.RAM.Pages != 0 || rep.RAM.ZeroPages != 0 {
		t.Errorf("%d PAGE and %d ZERO records in a mapped-ram stream", rep.RAM.Pages, rep.RAM.ZeroPages)
	}

	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every page is checked where it lies: a flipped byte in a page is
	// reported at the page's file offset.
	page := int64(mr.PagesOffset) + 1234*qemutest.PageSize
	b := bytes.Clone(orig)
	b[page+100] ^= 1
	opts, _ = keystreamPages()
	if _, err := ParseFile(bytes.NewReader(b), start, int64(len(b)), opts); !errAt(err, page) {
		t.Errorf("flipped page byte: err = %v, want an *Error at %d", err, page)
	}
	h := mr.HeaderOffset
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		offset int64
	}{
		{"truncated in the pages", func(b []byte) []byte { return b[:page+7] }, page + 7},
		{"header version 2", func(b []byte) []byte { b[h+3] = 2; return b }, h},
		{"bitmap offset corrupted", func(b []byte) []byte { b[h+4+8+7] ^= 0x40; return b }, h + 12},
		{"bitmap offset past the file", func(b []byte) []byte { b[h+4+8] = 0x7f; return b }, h + 12},
		{"pages offset not aligned", func(b []byte) []byte { b[h+4+8+8+7] = 8; return b }, h + 20},
		{"bit past the last page", func(b []byte) []byte {
			// The bitmap of the 1-page block /rom@etc/acpi/rsdp has 63
			// spare bits.
			r := blockNamed(t, rep, "/rom@etc/acpi/rsdp").MappedRAM
			b[r.BitmapOffset+3] = 1
			return b
		}, int64(blockNamed(t, rep, "/rom@etc/acpi/rsdp").MappedRAM.BitmapOffset) + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.damage(bytes.Clone(orig))
			_, err := ParseFile(bytes.NewReader(b), start, int64(len(b)), nil)
			if !errAt(err, tc.offset) {
				t.Fatalf("err = %v, want an *Error at %d", err, tc.offset)
			}
		})
	}
	// The same file through Parse, as from a pipe, stops at the header.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(start, 0)
	if _, err := Parse(f, nil); !errAt(err, h-start) {
		t.Errorf("Parse: err = %v, want an *Error at %d (counted from the stream's start)", err, h-start)
	}
}

func errAt(err error, off int64) bool {
	var e *Error
	return errors.As(err, &e) && e.Offset == off
}

// TestFileOffset: a plain stream written from byte N of a file is read
// from there, with file offsets in the report and in errors. QEMU 10.0
// writes it itself (file:PATH,offset=N, QEMU 8.2 and later); QEMU 7.2,
// which has no file: migration, writes its stream after N bytes that a
// shell puts first.
func TestFileOffset(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		const start = 0x1000
		vm := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: qemuMem})
		path := filepath.Join(t.TempDir(), "vm.state")
		if q.AtLeast(8, 2) {
			vm.Save(t, nil, fmt.Sprintf("file:%s,offset=0x%x", path, start))
		} else {
			vm.Save(t, nil, fmt.Sprintf("exec:{ head -c %d /dev/zero; cat; } > %s", start, path))
		}
		opts, seen := keystreamPages()
		rep, err := parsePath(t, path, start, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != qemuMem/qemutest.PageSize || rep.Start != start || rep.Sections[0].Offset < start || !rep.EOF {
			t.Fatalf("%d pages checked, start %d, first section at %d, EOF %v", len(seen), rep.Start, rep.Sections[0].Offset, rep.EOF)
		}
		if m := blockNamed(t, rep, qemutest.RAMBlock); m.Pages < qemuMem/qemutest.PageSize || m.MappedRAM != nil {
			t.Fatalf("block %+v", m)
		}
		// Read from 0, the file starts with zeros, not the magic.
		if _, err := parsePath(t, path, 0, nil); !errAt(err, 0) {
			t.Errorf("from offset 0: err = %v, want an *Error at 0", err)
		}
		// A damaged type byte of the first device section (after the ram
		// section, which is decoded exactly) is reported at its file
		// offset.
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(rep.Sections, func(s Section) bool { return s.Type == Full })
		s := rep.Sections[i]
		b[s.Offset] = 0x42
		if _, err := ParseFile(bytes.NewReader(b), start, int64(len(b)), nil); !errAt(err, s.Offset) {
			t.Errorf("damaged section type: err = %v, want an *Error at %d", err, s.Offset)
		}
	})
}
