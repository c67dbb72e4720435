// Package qemutest starts real QEMU virtual machines for interoperability
// tests: a thin testing.TB wrapper around internal/qemuvm, which does the
// work (and documents the VMs: keystream RAM, -S sources, -incoming defer
// destinations).
//
// Every VM is killed and reaped by t.Cleanup, and its files (QMP socket,
// RAM file, QEMU's log) are removed after it.
//
// # Which QEMU
//
// Two QEMUs matter: Debian's 7.2 and current QEMU (10.0 from Debian's
// bookworm-backports, which .ci/deps unpacks under /opt/livemig beside
// 7.2). The environment variable LIVEMIG_QEMU chooses them: a
// comma-separated list of qemu-system-x86_64 binaries. Unset, it means
// the one in PATH plus every /opt/livemig/qemu-*/usr/bin one (see
// qemuvm.Installed). A test that talks to QEMU runs once per QEMU, as
// subtests named after the version ([Each]: "TestX/qemu-10.0.2"), so the
// log says which QEMU passed or failed. A scenario that needs a newer
// QEMU than one of them skips that subtest, saying so.
//
// When no QEMU is installed, [Require] and [Each] skip the test with the
// reason, unless the environment has CI=true, in which case they fail: CI
// installs QEMU (.ci/deps), so its absence there is a defect. With
// CI=true, [Each] also fails when the QEMUs do not include both a 7.x and
// a 10.x or later, the two versions CI promises to test.
package qemutest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/qemuvm"
	"github.com/livemig/livemig/internal/testwait"
)

// Binary is the QEMU system emulator the tests run.
const Binary = qemuvm.Binary

// QEMU is one installed QEMU (see qemuvm.QEMU).
type QEMU = qemuvm.QEMU

// DefaultMemSize is the guest RAM of a VM when Options.MemSize is 0.
const DefaultMemSize = qemuvm.DefaultMemSize

// PageSize is x86's target page size, the unit of QEMU's RAM stream.
const PageSize = qemuvm.PageSize

// RAMBlock is the RAM block name of the guest's main memory in the
// stream: the memory backend's id.
const RAMBlock = qemuvm.RAMBlock

// Options configures a VM (see qemuvm.Options). The zero value is a
// 128 MiB keystream source.
type Options = qemuvm.Options

// PageChecker compares pages against the keystream (see
// qemuvm.PageChecker).
type PageChecker = qemuvm.PageChecker

// Keystream fills p with the keystream bytes that start at byte offset off
// (see qemuvm.Keystream).
func Keystream(off int64, p []byte) { qemuvm.Keystream(off, p) }

// WriteKeystreamFile creates path holding size bytes of the keystream.
func WriteKeystreamFile(path string, size int64) error {
	return qemuvm.WriteKeystreamFile(path, size)
}

// VM is a running QEMU process with a QMP connection; its fields and
// methods are qemuvm.VM's, plus SaveStream in the testing style.
type VM struct{ *qemuvm.VM }

// Require skips t when one of the tools (default: QEMU) is not installed,
// or fails it when the environment variable CI is "true".
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if len(tools) == 0 {
		tools = []string{Binary}
	}
	var missing []string
	for _, tool := range tools {
		if tool == Binary {
			if list, err := qemuvm.Installed(); err != nil {
				t.Fatal(err)
			} else if len(list) == 0 {
				missing = append(missing, tool)
			}
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%s not installed (run `bash .ci/deps` to install QEMU and GnuTLS)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

// Start starts QEMU as opts describes (qemuvm.Start), connects QMP and
// registers its Close with t.Cleanup. It fails t on any error.
func Start(t testing.TB, opts Options) *VM {
	t.Helper()
	Require(t)
	vm, err := qemuvm.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := vm.Close(); err != nil {
			t.Error(err)
		}
	})
	return &VM{vm}
}

// Context returns a context for QMP calls bounded by d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// SaveStream migrates vm to exec:cat > path (the classic way to save a
// QEMU stream to a file) and waits until QEMU reports completed, failing
// t on error or after 60 s.
func (vm *VM) SaveStream(t testing.TB, path string) {
	t.Helper()
	if err := vm.VM.SaveStream(Context(t, 60*time.Second), path); err != nil {
		t.Fatal(err)
	}
}

// Save sets the migration capabilities caps (none if nil), migrates vm to
// uri (such as "file:PATH" or "exec:cat > PATH") and waits until QEMU
// reports completed, failing t on error or after 60 s.
func (vm *VM) Save(t testing.TB, caps map[string]bool, uri string) {
	t.Helper()
	ctx := Context(t, 60*time.Second)
	if len(caps) > 0 {
		if err := vm.QMP.SetCapabilities(ctx, caps); err != nil {
			t.Fatalf("%s: %v", vm.QEMU, err)
		}
	}
	if err := vm.VM.Save(ctx, uri); err != nil {
		t.Fatal(err)
	}
}

// Each runs f once per installed QEMU, as a subtest named after its
// version ("qemu-7.2.22"), after [Require]. With CI=true it fails t when
// the installed QEMUs lack a 7.x or a 10.x-or-later one.
func Each(t *testing.T, f func(t *testing.T, q QEMU)) {
	t.Helper()
	Require(t)
	list, _ := qemuvm.Installed()
	if os.Getenv("CI") == "true" {
		if err := ciCoverage(list); err != nil {
			t.Fatalf("CI=true: %v", err)
		}
	}
	for _, q := range list {
		t.Run(q.String(), func(t *testing.T) {
			t.Logf("%s (%s)", q, q.Path)
			f(t, q)
		})
	}
}

// ciCoverage returns an error unless list holds a QEMU 7.x and a QEMU 10
// or later.
func ciCoverage(list []QEMU) error {
	var old, current bool
	for _, q := range list {
		old = old || q.Major == 7
		current = current || q.Major >= 10
	}
	if old && current {
		return nil
	}
	names := make([]string, len(list))
	for i, q := range list {
		names[i] = q.String()
	}
	return fmt.Errorf("the QEMUs found (%s) should include 7.x and 10.x or later: run `bash .ci/deps`, or set %s",
		strings.Join(names, ", "), qemuvm.EnvQEMU)
}

// LoadObject starts QEMU q with no machine and no guest, with one -object
// option (such as "tls-creds-x509,id=t0,dir=DIR,endpoint=server"), and
// returns nil when QEMU created the object, or an error holding what QEMU
// printed when it refused it. QEMU is asked to quit over QMP once it is
// up. It fails t when QEMU cannot be run at all.
func LoadObject(t testing.TB, q QEMU, object string) error {
	t.Helper()
	ctx := testwait.Context(t)
	cmd := q.Command(ctx, "-nodefaults", "-machine", "none", "-display", "none",
		"-S", "-qmp", "stdio", "-object", object)
	cmd.Stdin = strings.NewReader("{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s -object %s: no answer: %v", q, object, ctx.Err())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return errors.New(strings.TrimSpace(stderr.String()))
	}
	t.Fatalf("running %s: %v", q.Path, err)
	return nil
}
