package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/internal/vmstream"
)

// qemu72Devices are the FULL sections of QEMU 7.2's pc-i440fx-7.2 machine
// with -nodefaults under TCG, in stream order (savevm_state.handlers).
var qemu72Devices = []string{"timer", "cpu_common", "cpu", "kvm-tpr-opt", "apic", "fw_cfg", "PCIHost", "PCIBUS",
	"0000:00:00.0/I440FX", "dma", "dma", "0000:00:01.0/PIIX3", "i8259", "i8259", "ioapic", "hpet", "mc146818rtc",
	"i8254", "pcspk", "fdc", "ps2kbd", "ps2mouse", "pckbd", "vmmouse", "port92", "0000:00:01.1/ide", "i2c_bus",
	"0000:00:01.3/piix4_pm", "acpi_build", "globalstate"}

type analysis struct {
	vmstream.Report
	Error       string `json:"error"`
	ErrorOffset *int64 `json:"error_offset"`
}

// analyze runs migrate-analyze --json on path and returns its report and
// exit code.
func analyze(t *testing.T, path string) (*analysis, int) {
	t.Helper()
	return analyzeInput(t, path, nil)
}

// analyzeInput runs migrate-analyze --json on arg (a path, a file: URI or
// "-") with stdin, and returns its report and exit code.
func analyzeInput(t *testing.T, arg string, stdin io.Reader) (*analysis, int) {
	t.Helper()
	cmd := exec.Command(binary(t, "migrate-analyze"), "--json", arg)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var a analysis
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("migrate-analyze output: %v\n%.500s\n%s", err, out, stderr.String())
	}
	if code != 0 && !strings.Contains(stderr.String(), "offset") {
		t.Errorf("migrate-analyze failed without naming an offset: %s", stderr.String())
	}
	return &a, code
}

// TestAnalyzeQEMUStreams is scenario 4: QEMU's stream saved with exec:cat
// and through migrate-proxy --to file:PATH is listed as QEMU writes it
// (with QEMU 7.2's exact device list on 7.2), and damaged copies are
// reported at the right offset. Runs on each installed QEMU.
func TestAnalyzeQEMUStreams(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) { analyzeQEMUStreams(t, q) })
}

func analyzeQEMUStreams(t *testing.T, q qemutest.QEMU) {
	dir := t.TempDir()
	vm := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: 32 << 20})
	viaExec := filepath.Join(dir, "exec.state")
	vm.SaveStream(t, viaExec)

	// The same guest again, through the proxy into a file.
	vm2 := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: 32 << 20})
	viaProxy := filepath.Join(dir, "proxy.state")
	sock := filepath.Join(vm2.Dir, "mig.sock")
	px := start(t, "migrate-proxy", "--raw", "--listen", "unix:"+sock, "--to", "file:"+viaProxy)
	px.listening(t)
	ctx := testwait.Context(t)
	if err := vm2.QMP.Migrate(ctx, "unix:"+sock); err != nil {
		t.Fatal(err)
	}
	if _, err := vm2.QMP.WaitMigration(ctx, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the proxy logging the connection closed", func() bool { return strings.Contains(px.Stderr(), "closed:") })

	is72 := q.Major == 7 && q.Minor == 2
	for _, path := range []string{viaExec, viaProxy} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			a, code := analyze(t, path)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, a.Error)
			}
			if !a.EOF || a.VMDesc == nil || a.Configuration == nil {
				t.Fatalf("EOF %v, VMDESCRIPTION %v, configuration %v", a.EOF, a.VMDesc != nil, a.Configuration != nil)
			}
			var full []string
			for _, s := range a.Sections {
				if s.Name == "ram" && s.Type == vmstream.Full {
					t.Errorf("ram in a FULL section")
				}
				if s.Type == vmstream.Full {
					full = append(full, s.Name)
				}
			}
			if first := a.Sections[0]; first.Name != "ram" || first.Type != vmstream.Start {
				t.Errorf("first section %+v, want START ram", first)
			}
			if want := fmt.Sprintf("pc-i440fx-%d.%d", q.Major, q.Minor); a.Configuration.Machine != want {
				t.Errorf("machine %q, want %q", a.Configuration.Machine, want)
			}
			if is72 {
				if strings.Join(full, " ") != strings.Join(qemu72Devices, " ") {
					t.Errorf("FULL sections\n%v\nwant QEMU 7.2's\n%v", full, qemu72Devices)
				}
			}
			if a.RAM.Blocks[0].Name != qemutest.RAMBlock || a.RAM.Blocks[0].Size != 32<<20 {
				t.Errorf("first RAM block %+v", a.RAM.Blocks[0])
			}
		})
	}

	// Damaged copies.
	orig, err := os.ReadFile(viaExec)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := analyze(t, viaExec)
	var full vmstream.Section
	for _, s := range good.Sections {
		if s.Type == vmstream.Full {
			full = s
			break
		}
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		offset int64
	}{
		{"magic flipped", func(b []byte) []byte { b[1] ^= 0xff; return b }, 0},
		{"section type flipped", func(b []byte) []byte { b[full.Offset] = 0x42; return b }, full.Offset},
		{"footer id flipped", func(b []byte) []byte { b[full.Offset-1] ^= 0x01; return b }, full.Offset - 4},
		{"truncated in RAM", func(b []byte) []byte { return b[:len(b)/2] }, int64(len(orig) / 2)},
		{"truncated before EOF", func(b []byte) []byte { return b[:good.EOFOffset] }, good.EOFOffset},
		{"truncated in VMDESCRIPTION", func(b []byte) []byte { return b[:len(b)-10] }, int64(len(orig) - 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.state")
			if err := os.WriteFile(p, tc.damage(bytes.Clone(orig)), 0o600); err != nil {
				t.Fatal(err)
			}
			a, code := analyze(t, p)
			if code != 1 || a.ErrorOffset == nil {
				t.Fatalf("exit %d, error %q, want exit 1 with an offset", code, a.Error)
			}
			if *a.ErrorOffset != tc.offset {
				t.Fatalf("reported offset %d (%s), want %d", *a.ErrorOffset, a.Error, tc.offset)
			}
		})
	}
}

// TestAnalyzeCapabilities: migrate-analyze reads, end to end, the files
// QEMU writes with x-ignore-shared (7.2 and 10.0), with mapped-ram (with
// and without multifd; QEMU 9.0 and later) and from an offset of the file
// (file:PATH,offset=N, QEMU 8.2 and later; on 7.2 a shell writes the
// stream after N zero bytes), given as a file: URI; and it reports damaged
// mapped-ram copies at the file offset of the damage.
func TestAnalyzeCapabilities(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) { analyzeCapabilities(t, q) })
}

func analyzeCapabilities(t *testing.T, q qemutest.QEMU) {
	const mem = 16 << 20
	const pages = mem / qemutest.PageSize
	block := func(t *testing.T, a *analysis, name string) vmstream.Block {
		t.Helper()
		for _, b := range a.RAM.Blocks {
			if b.Name == name {
				return b
			}
		}
		t.Fatalf("no RAM block %s in %+v", name, a.RAM.Blocks)
		return vmstream.Block{}
	}
	ok := func(t *testing.T, arg string) *analysis {
		t.Helper()
		a, code := analyze(t, arg)
		if code != 0 || !a.EOF || a.VMDesc == nil {
			t.Fatalf("migrate-analyze %s: exit %d, EOF %v: %s", arg, code, a.EOF, a.Error)
		}
		return a
	}
	save := func(t *testing.T, caps map[string]bool, uri string) {
		vm := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: mem})
		vm.Save(t, caps, uri)
	}

	t.Run("x-ignore-shared", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vm.state")
		save(t, map[string]bool{"x-ignore-shared": true}, "exec:cat > "+path)
		a := ok(t, path)
		if !a.RAM.IgnoreShared || !strings.Contains(strings.Join(a.Configuration.Capabilities, " "), "x-ignore-shared") {
			t.Fatalf("ram %+v, configuration %+v", a.RAM, a.Configuration)
		}
		if m := block(t, a, qemutest.RAMBlock); m.Size != mem || m.Pages+m.ZeroPages != 0 {
			t.Errorf("the shared block %+v carries pages", m)
		}
		if b := block(t, a, "pc.bios"); b.Pages == 0 || b.GuestAddr == 0 {
			t.Errorf("pc.bios %+v, want pages and its guest address", b)
		}
	})

	t.Run("offset", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vm.state")
		if q.AtLeast(8, 2) {
			save(t, nil, "file:"+path+",offset=0x1000")
		} else {
			save(t, nil, "exec:{ head -c 4096 /dev/zero; cat; } > "+path)
		}
		a := ok(t, "file:"+path+",offset=4096")
		if a.Start != 4096 || a.Configuration.Offset != 4096+8 || block(t, a, qemutest.RAMBlock).Pages < pages {
			t.Errorf("start %d, configuration at %d, block %+v", a.Start, a.Configuration.Offset, block(t, a, qemutest.RAMBlock))
		}
		// The same file from 0 holds zeros where the magic should be.
		if a, code := analyze(t, path); code != 1 || a.ErrorOffset == nil || *a.ErrorOffset != 0 {
			t.Errorf("from offset 0: exit %d, %q, want an error at 0", code, a.Error)
		}
	})

	if !q.AtLeast(9, 0) {
		t.Logf("%s has no mapped-ram (QEMU 9.0 and later): mapped-ram cases skipped", q)
		return
	}
	for _, tc := range []struct {
		name  string
		caps  map[string]bool
		start int64
	}{
		{"mapped-ram", map[string]bool{"mapped-ram": true}, 0},
		{"mapped-ram+multifd at offset", map[string]bool{"mapped-ram": true, "multifd": true}, 0x2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vm.state")
			arg := fmt.Sprintf("file:%s,offset=%d", path, tc.start)
			save(t, tc.caps, arg)
			if tc.start == 0 {
				arg = path
			}
			a := ok(t, arg)
			m := block(t, a, qemutest.RAMBlock)
			if !a.RAM.MappedRAM || a.Start != tc.start || m.Pages != pages || m.MappedRAM == nil || m.MappedRAM.PagesOffset%(1<<20) != 0 {
				t.Fatalf("mapped-ram %v, start %d, block %+v %+v", a.RAM.MappedRAM, a.Start, m, m.MappedRAM)
			}
			for _, b := range a.RAM.Blocks {
				if b.MappedRAM == nil {
					t.Errorf("block %s has no mapped-ram header", b.Name)
				}
			}
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// From stdin, a pipe, the pages cannot be reached.
			if a, code := analyzeInput(t, "-", bytes.NewReader(orig[tc.start:])); code != 1 || a.ErrorOffset == nil || *a.ErrorOffset != m.MappedRAM.HeaderOffset-tc.start {
				t.Errorf("from stdin: exit %d, %q, want an error at the header, %d", code, a.Error, m.MappedRAM.HeaderOffset-tc.start)
			}
			h := m.MappedRAM.HeaderOffset
			inPages := int64(m.MappedRAM.PagesOffset) + mem/2 + 5
			for _, d := range []struct {
				name   string
				damage func([]byte) []byte
				offset int64
			}{
				{"truncated in the pages", func(b []byte) []byte { return b[:inPages] }, inPages},
				{"header version flipped", func(b []byte) []byte { b[h+3] ^= 0x10; return b }, h},
				{"bitmap offset corrupted", func(b []byte) []byte { b[h+4+8+6] ^= 0x01; return b }, h + 12},
			} {
				t.Run(d.name, func(t *testing.T) {
					p := filepath.Join(t.TempDir(), "bad.state")
					if err := os.WriteFile(p, d.damage(bytes.Clone(orig)), 0o600); err != nil {
						t.Fatal(err)
					}
					a, code := analyze(t, fmt.Sprintf("file:%s,offset=%d", p, tc.start))
					if code != 1 || a.ErrorOffset == nil || *a.ErrorOffset != d.offset {
						t.Fatalf("exit %d, %q, want exit 1 with an error at %d", code, a.Error, d.offset)
					}
				})
			}
		})
	}
}
