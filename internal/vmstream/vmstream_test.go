package vmstream

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/qemutest"
)

var update = flag.Bool("update", false, "regenerate testdata from the installed QEMU")

const golden = "testdata/qemu-7.2-16M-zero"

// TestGolden parses a real QEMU 7.2 stream (16 MiB of zero RAM, saved with
// exec:cat) and compares the listing with the golden text.
func TestGolden(t *testing.T) {
	if *update {
		vm := qemutest.Start(t, qemutest.Options{MemSize: 16 << 20, ZeroRAM: true})
		raw := filepath.Join(t.TempDir(), "stream")
		vm.SaveStream(t, raw)
		b, err := os.ReadFile(raw)
		if err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		if err := os.WriteFile(golden+".bin.gz", gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := readGolden(t)
	rep, err := Parse(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.WriteText(&out)
	if *update {
		os.WriteFile(golden+".txt", []byte(out.String()), 0o644)
	}
	want, err := os.ReadFile(golden + ".txt")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Fatalf("listing differs from %s.txt:\n%s", golden, out.String())
	}
	// What QEMU 7.2's pc machine sends (savevm.c, ram.c): START ram first,
	// the RAM blocks with m of 16 MiB, every page of m zero, the FULL devices
	// matching the VMDESCRIPTION, EOF.
	if s := rep.Sections[0]; s.Type != Start || s.Name != "ram" || s.Version != 4 {
		t.Errorf("first section %+v, want START ram version 4", s)
	}
	if rep.Configuration == nil || rep.Configuration.Machine != "pc-i440fx-7.2" {
		t.Errorf("configuration %+v", rep.Configuration)
	}
	if b := rep.RAM.Blocks[0]; b.Name != "m" || b.Size != 16<<20 || b.ZeroPages != 4096 || b.Pages != 0 {
		t.Errorf("first block %+v", rep.RAM.Blocks[0])
	}
	if !rep.EOF || rep.VMDesc == nil || len(rep.VMDesc.Devices) < 20 {
		t.Errorf("EOF %v, VMDESCRIPTION %v", rep.EOF, rep.VMDesc != nil)
	}
}

func readGolden(t testing.TB) []byte {
	t.Helper()
	f, err := os.Open(golden + ".bin.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantErrAt(t *testing.T, b []byte, off int64, reason string) {
	t.Helper()
	_, err := Parse(bytes.NewReader(b), nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error at %d", err, off)
	}
	if e.Offset != off || !strings.Contains(e.Error(), reason) {
		t.Fatalf("err = %v, want offset %d and %q", err, off, reason)
	}
}

// TestCorrupt damages the golden stream and checks the offset reported.
func TestCorrupt(t *testing.T) {
	b := readGolden(t)
	rep, err := Parse(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(off int64, v byte) []byte {
		c := bytes.Clone(b)
		c[off] = v
		return c
	}
	t.Run("magic", func(t *testing.T) { wantErrAt(t, flip(0, 'X'), 0, "magic") })
	t.Run("version", func(t *testing.T) { wantErrAt(t, flip(7, 2), 4, "version is 2") })
	var full, end Section
	for _, s := range rep.Sections {
		if s.Type == Full && full.Name == "" {
			full = s
		}
		if s.Type == End {
			end = s
		}
	}
	t.Run("section type", func(t *testing.T) { wantErrAt(t, flip(full.Offset, 0x09), full.Offset, "unknown section type 0x09") })
	// END ram: type, be32 id, then the first be64 record.
	t.Run("ram flags", func(t *testing.T) { wantErrAt(t, flip(end.Offset+5+7, 0x01), end.Offset+5, "invalid flags") })
	t.Run("ram footer", func(t *testing.T) {
		foot := end.Offset + end.Size - 5
		wantErrAt(t, flip(foot+4, 0x7f), foot+1, "footer names section 127")
	})
	t.Run("vmdesc json", func(t *testing.T) {
		d := rep.VMDesc.Offset + 5
		wantErrAt(t, flip(d+1, 'x'), d+1, "VMDESCRIPTION")
	})
	t.Run("trailing", func(t *testing.T) { wantErrAt(t, append(bytes.Clone(b), 0), int64(len(b)), "trailing data") })
	// Truncation anywhere is reported where the missing byte should be,
	// except right after EOF, which is a valid stream without VMDESCRIPTION.
	for _, n := range []int64{0, 3, 8, 9, 30, 200, full.Offset, full.Offset + 1, full.Offset + 7, end.Offset + 100,
		rep.Sections[len(rep.Sections)-1].Offset + 3, rep.EOFOffset, rep.EOFOffset + 3, int64(len(b)) - 1} {
		t.Run(fmt.Sprint("truncated at ", n), func(t *testing.T) { wantErrAt(t, b[:n], n, "") })
	}
	if _, err := Parse(bytes.NewReader(b[:rep.EOFOffset+1]), nil); err != nil {
		t.Errorf("stream cut after EOF: %v", err)
	}
}

// TestKeystreamStream captures a stream of a keystream guest from each
// installed QEMU at test time and checks every page of its RAM block
// against the keystream.
func TestKeystreamStream(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) { keystreamStream(t, q) })
}

func keystreamStream(t *testing.T, q qemutest.QEMU) {
	const size = 16 << 20
	vm := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: size})
	path := filepath.Join(t.TempDir(), "stream")
	vm.SaveStream(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c qemutest.PageChecker
	seen := map[uint64]bool{}
	rep, err := Parse(f, &Options{Page: func(block string, off uint64, data []byte, fill byte) error {
		if block != qemutest.RAMBlock {
			return nil
		}
		if data == nil || !c.Check(off, data) {
			return fmt.Errorf("page does not hold the keystream")
		}
		seen[off] = true
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != size/qemutest.PageSize {
		t.Fatalf("%d distinct pages of %s, want %d", len(seen), qemutest.RAMBlock, size/qemutest.PageSize)
	}
	if !rep.EOF {
		t.Fatal("no EOF")
	}
	// A flipped byte inside a page is caught by the page check, at the
	// page's record.
	b, _ := os.ReadFile(path)
	i := bytes.Index(b, []byte{0, 0, 0, 0, 0, 0x10, 0, 0x28}) // page at 1 MiB, PAGE|CONTINUE
	if i < 0 {
		t.Fatal("record of the page at 1 MiB not found")
	}
	b[i+8+100] ^= 1
	_, err = Parse(bytes.NewReader(b), &Options{Page: func(block string, off uint64, data []byte, fill byte) error {
		if block == qemutest.RAMBlock && !c.Check(off, data) {
			return errors.New("page does not hold the keystream")
		}
		return nil
	}})
	var e *Error
	if !errors.As(err, &e) || e.Offset != int64(i) {
		t.Fatalf("err = %v, want *Error at %d", err, i)
	}
}

// FuzzParse: the decoder never panics, and every error is an *Error
// pointing inside the input (or just past its end).
func FuzzParse(f *testing.F) {
	hdr := []byte{0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3}
	f.Add(hdr)                                                     // header only: no EOF
	f.Add(append(bytes.Clone(hdr), 0))                             // minimal valid stream
	f.Add(append(bytes.Clone(hdr), 7, 0, 0, 0, 1, 'x', 5, 1, 'a')) // config + unknown subsection
	ram := append(bytes.Clone(hdr), 1, 0, 0, 0, 2, 3, 'r', 'a', 'm', 0, 0, 0, 0, 0, 0, 0, 4)
	ram = binary.BigEndian.AppendUint64(ram, 0x2000|RAMMemSize)
	ram = append(ram, 1, 'm')
	ram = binary.BigEndian.AppendUint64(ram, 0x2000)
	ram = binary.BigEndian.AppendUint64(ram, RAMEOS)
	ram = append(ram, 0x7e, 0, 0, 0, 2)
	f.Add(bytes.Clone(ram)) // START ram with one 8 KiB block
	page := binary.BigEndian.AppendUint64(append(bytes.Clone(ram), 2, 0, 0, 0, 2), 0x1000|RAMZero)
	page = append(page, 1, 'm', 0)
	page = binary.BigEndian.AppendUint64(page, RAMEOS)
	f.Add(append(page, 0x7e, 0, 0, 0, 2, 0)) // a zero page at the block's last page, EOF
	dev := append(bytes.Clone(hdr), 4, 0, 0, 0, 3, 1, 'd', 0, 0, 0, 0, 0, 0, 0, 1, 0x7e, 0x7e, 0, 0, 0, 3, 0)
	f.Add(dev) // device section whose payload starts with the footer byte
	f.Add(append(bytes.Clone(hdr), 8, 0, 2, 0, 4, 0, 0, 0, 1, 0, 6, 0, 0, 0, 2, '{', '}'))
	if g, err := os.Open(golden + ".bin.gz"); err == nil {
		zr, _ := gzip.NewReader(g)
		b := make([]byte, 4096)
		n, _ := io.ReadFull(zr, b)
		f.Add(b[:n]) // the start of a real stream
		g.Close()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Parse(bytes.NewReader(b), &Options{MaxDeviceSection: 1 << 16, MaxVMDesc: 1 << 16})
		if rep == nil || rep.Size > int64(len(b)) {
			t.Fatalf("report %v", rep)
		}
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Offset < 0 || e.Offset > int64(len(b)) {
			t.Fatalf("err %v outside the input of %d bytes", err, len(b))
		}
	})
}

// TestCommands: COMMAND records as the source sends them with a return
// path (OPEN_RETURN_PATH, PING; savevm.c qemu_savevm_send_*).
func TestCommands(t *testing.T) {
	hdr := []byte{0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3}
	b := append(bytes.Clone(hdr), 8, 0, 1, 0, 0) // OPEN_RETURN_PATH, no data
	b = append(b, 8, 0, 2, 0, 4, 0, 0, 0, 1)     // PING 1
	b = append(b, 0)                             // EOF, no VMDESCRIPTION
	rep, err := Parse(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Commands) != 2 || rep.Commands[0].Name != "OPEN_RETURN_PATH" || rep.Commands[1].Name != "PING" || rep.Commands[1].Offset != 13 {
		t.Fatalf("commands %+v", rep.Commands)
	}
	bad := append(bytes.Clone(hdr), 8, 0, 2, 0, 3, 0, 0, 0) // PING with 3 bytes
	wantErrAt(t, bad, 11, "length 3, want 4")
	unknown := append(bytes.Clone(hdr), 8, 0, 99, 0, 0)
	wantErrAt(t, unknown, 9, "unknown command 99")
}

// TestHugeTargetPageBits: the page size comes from the stream, and every
// target of QEMU has pages of at most 64 KiB (TARGET_PAGE_BITS <= 16), so a
// larger target-page-bits is refused where it stands instead of making the
// parser allocate a page buffer of up to 1 GiB from a few bytes of input.
func TestHugeTargetPageBits(t *testing.T) {
	hdr := []byte{0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3}
	const sub = "configuration/target-page-bits"
	stream := func(bits uint32) []byte {
		b := append(bytes.Clone(hdr), 7, 0, 0, 0, 2, 'p', 'c', 5, byte(len(sub)))
		b = append(b, sub...)
		b = binary.BigEndian.AppendUint32(b, 1)    // subsection version
		b = binary.BigEndian.AppendUint32(b, bits) // at offset 51
		b = append(b, 1, 0, 0, 0, 2, 3, 'r', 'a', 'm', 0, 0, 0, 0, 0, 0, 0, 4)
		size := uint64(1) << bits
		b = binary.BigEndian.AppendUint64(b, size|RAMMemSize)
		b = append(b, 1, 'm')
		b = binary.BigEndian.AppendUint64(b, size)
		b = binary.BigEndian.AppendUint64(b, RAMPage)
		return append(b, 1, 'm') // a page at 0 of block m, then the stream ends
	}
	// 64 KiB pages (the largest QEMU target page) are read as such.
	wantErrAt(t, stream(16), int64(len(stream(16))), "ram page")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	wantErrAt(t, stream(30), 51, "target-page-bits 30 out of range 9..16")
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
		t.Fatalf("parsing %d bytes allocated %d bytes", len(stream(30)), d)
	}
}
