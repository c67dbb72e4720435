// Package qemutest starts real QEMU virtual machines for interoperability
// tests and drives them through QMP.
//
// A source VM's RAM is a memory-backend-file pre-filled with a deterministic
// keystream (AES-128-CTR of zeros under a fixed key, see [Keystream]), so a
// test can check every page that crosses the wire without storing
// expectations. A destination VM has RAM of its own and waits with
// -incoming defer until the test calls migrate-incoming.
//
// Every VM is killed and reaped by t.Cleanup; its temporary directory
// (QMP socket, RAM file, QEMU's stderr log) is removed after it.
//
// When qemu-system-x86_64 is missing, [Require] skips the test with the
// reason, unless the environment has CI=true, in which case it fails: CI
// installs QEMU (.ci/deps), so its absence there is a defect.
package qemutest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/qmp"
)

// Binary is the QEMU system emulator the tests run.
const Binary = "qemu-system-x86_64"

// DefaultMemSize is the guest RAM of a VM when Options.MemSize is 0.
const DefaultMemSize = 128 << 20

// PageSize is x86's target page size, the unit of QEMU's RAM stream.
const PageSize = 4096

// RAMBlock is the RAM block name of the guest's main memory in the
// stream: the memory backend's id.
const RAMBlock = "m"

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

var keystreamKey = []byte("livemig-qemutest") // 16 bytes: AES-128

// Keystream fills p with the keystream bytes that start at byte offset off
// (a multiple of 16): AES-128-CTR of zeros, counter = off/16, fixed key.
func Keystream(off int64, p []byte) {
	block, err := aes.NewCipher(keystreamKey)
	if err != nil {
		panic(err) // the key length is a constant
	}
	var iv [16]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/16))
	clear(p)
	cipher.NewCTR(block, iv[:]).XORKeyStream(p, p)
}

// WriteKeystreamFile creates path holding size bytes of the keystream.
func WriteKeystreamFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		Keystream(off, buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// PageChecker compares pages against the keystream, reusing its buffer.
// It is not safe for concurrent use.
type PageChecker struct{ want []byte }

// Check reports whether page (PageSize bytes at guest offset off) holds the
// keystream.
func (c *PageChecker) Check(off uint64, page []byte) bool {
	if len(c.want) != len(page) {
		c.want = make([]byte, len(page))
	}
	Keystream(int64(off), c.want)
	return string(c.want) == string(page)
}

// Options configures a VM. The zero value is a 128 MiB source.
type Options struct {
	// MemSize is the guest RAM in bytes; 0 means DefaultMemSize.
	MemSize int64
	// Incoming makes a destination: RAM from memory-backend-ram, started
	// with -incoming defer.
	Incoming bool
	// ZeroRAM gives a source zero-filled RAM from memory-backend-ram
	// instead of the keystream file: a small, compressible stream.
	ZeroRAM bool
	// Args are appended to QEMU's command line, e.g. -object specs.
	Args []string
}

// VM is a running QEMU process with a QMP connection.
type VM struct {
	QMP     *qmp.Client
	Dir     string // temporary directory of this VM
	MemPath string // source: the keystream RAM file
	MemSize int64

	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

// Start starts QEMU as opts describes, connects QMP and registers cleanup.
// It fails t on any error.
func Start(t testing.TB, opts Options) *VM {
	t.Helper()
	Require(t)
	if opts.MemSize == 0 {
		opts.MemSize = DefaultMemSize
	}
	// A short directory of our own: unix socket paths are limited to 107
	// bytes and t.TempDir embeds the test name.
	dir, err := os.MkdirTemp("", "qemutest")
	if err != nil {
		t.Fatal(err)
	}
	vm := &VM{Dir: dir, MemSize: opts.MemSize, logPath: filepath.Join(dir, "qemu.log"), done: make(chan struct{})}
	t.Cleanup(func() {
		vm.Kill()
		os.RemoveAll(dir)
	})
	mem := fmt.Sprintf("%dM", opts.MemSize>>20)
	args := []string{"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "pc,accel=tcg,memory-backend=m", "-m", mem,
		"-qmp", "unix:" + filepath.Join(dir, "qmp.sock") + ",server=on,wait=off"}
	switch {
	case opts.Incoming:
		args = append(args, "-object", "memory-backend-ram,id=m,size="+mem, "-incoming", "defer")
	case opts.ZeroRAM:
		args = append(args, "-object", "memory-backend-ram,id=m,size="+mem, "-S")
	default:
		vm.MemPath = filepath.Join(dir, "ram")
		if err := WriteKeystreamFile(vm.MemPath, opts.MemSize); err != nil {
			t.Fatalf("qemutest: writing RAM file: %v", err)
		}
		args = append(args, "-object", "memory-backend-file,id=m,size="+mem+",mem-path="+vm.MemPath+",share=on", "-S")
	}
	args = append(args, opts.Args...)
	logf, err := os.Create(vm.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	vm.cmd = exec.Command(Binary, args...)
	vm.cmd.Stdout = logf
	vm.cmd.Stderr = logf
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	vm.cmd.WaitDelay = 5 * time.Second
	if err := vm.cmd.Start(); err != nil {
		t.Fatalf("qemutest: %v", err)
	}
	go func() { vm.cmd.Wait(); close(vm.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := filepath.Join(dir, "qmp.sock")
	for {
		c, err := qmp.Dial(ctx, sock)
		if err == nil {
			vm.QMP = c
			break
		}
		select {
		case <-vm.done:
			t.Fatalf("qemutest: QEMU exited at start: %s", vm.Log())
		case <-ctx.Done():
			t.Fatalf("qemutest: QMP did not come up: %v; QEMU says: %s", err, vm.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// QEMU 7.2 throttles migration to 128 MiB/s by default.
	if err := vm.QMP.SetParameters(ctx, map[string]any{"max-bandwidth": int64(1) << 40}); err != nil {
		t.Fatalf("qemutest: %v", err)
	}
	return vm
}

// Log returns what QEMU wrote to stdout and stderr so far (at most 4 KiB,
// the end).
func (vm *VM) Log() string {
	b, _ := os.ReadFile(vm.logPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return strings.TrimSpace(string(b))
}

// Exited reports whether the QEMU process has ended.
func (vm *VM) Exited() bool {
	select {
	case <-vm.done:
		return true
	default:
		return false
	}
}

// Kill closes QMP, kills QEMU and waits for it to be reaped. It is
// idempotent.
func (vm *VM) Kill() {
	if vm.QMP != nil {
		vm.QMP.Close()
	}
	if vm.cmd != nil && vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
		<-vm.done
	}
}

// Context returns a context for QMP calls bounded by d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// SaveStream migrates vm to exec:cat > path (the classic way to save a
// QEMU stream to a file) and waits until QEMU reports completed.
func (vm *VM) SaveStream(t testing.TB, path string) {
	t.Helper()
	ctx := Context(t, 60*time.Second)
	if strings.ContainsRune(path, '\'') {
		t.Fatalf("qemutest: path %q contains a single quote", path)
	}
	if err := vm.QMP.Migrate(ctx, "exec:cat > '"+path+"'"); err != nil {
		t.Fatalf("qemutest: %v", err)
	}
	if _, err := vm.QMP.WaitMigration(ctx, 10*time.Millisecond); err != nil {
		t.Fatalf("qemutest: %v; QEMU says: %s", err, vm.Log())
	}
}
