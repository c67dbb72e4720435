package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	cmd := exec.Command(binary(t, "migrate-analyze"), "--json", path)
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
