// Package qemutest starts real QEMU virtual machines for interoperability
// tests: a thin testing.TB wrapper around internal/qemuvm, which does the
// work (and documents the VMs: keystream RAM, -S sources, -incoming defer
// destinations).
//
// Every VM is killed and reaped by t.Cleanup, and its files (QMP socket,
// RAM file, QEMU's log) are removed after it.
//
// When qemu-system-x86_64 is missing, [Require] skips the test with the
// reason, unless the environment has CI=true, in which case it fails: CI
// installs QEMU (.ci/deps), so its absence there is a defect.
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

// LoadObject starts QEMU with no machine and no guest, with one -object
// option (such as "tls-creds-x509,id=t0,dir=DIR,endpoint=server"), and
// returns nil when QEMU created the object, or an error holding what QEMU
// printed when it refused it. QEMU is asked to quit over QMP once it is
// up. It skips t as [Require] does when QEMU is missing, and fails t when
// QEMU cannot be run at all.
func LoadObject(t testing.TB, object string) error {
	t.Helper()
	Require(t)
	ctx := testwait.Context(t)
	cmd := exec.CommandContext(ctx, Binary, "-nodefaults", "-machine", "none", "-display", "none",
		"-S", "-qmp", "stdio", "-object", object)
	cmd.Stdin = strings.NewReader("{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s -object %s: no answer: %v", Binary, object, ctx.Err())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return errors.New(strings.TrimSpace(stderr.String()))
	}
	t.Fatalf("running %s: %v", Binary, err)
	return nil
}

// Version returns the first line of `qemu-system-x86_64 --version`, for
// logs; it skips t as [Require] does when QEMU is missing.
func Version(t testing.TB) string {
	t.Helper()
	Require(t)
	out, err := exec.Command(Binary, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", Binary, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line
}
