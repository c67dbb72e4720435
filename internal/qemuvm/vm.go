package qemuvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/livemig/livemig/internal/qmp"
)

// Binary is the QEMU system emulator this package runs.
const Binary = "qemu-system-x86_64"

// DefaultMemSize is the guest RAM of a VM when Options.MemSize is 0.
const DefaultMemSize = 128 << 20

// PageSize is x86's target page size, the unit of QEMU's RAM stream.
const PageSize = 4096

// RAMBlock is the RAM block name of the guest's main memory in the
// stream: the memory backend's id.
const RAMBlock = "m"

// startTimeout bounds the wait for QMP to come up.
const startTimeout = 30 * time.Second

// Options configures a VM. The zero value is a 128 MiB keystream source.
type Options struct {
	// MemSize is the guest RAM in bytes, a multiple of 1 MiB; 0 means
	// DefaultMemSize.
	MemSize int64
	// Incoming makes a destination: RAM from memory-backend-ram, started
	// with -incoming defer.
	Incoming bool
	// ZeroRAM gives a source zero-filled RAM from memory-backend-ram
	// instead of the keystream file: a small, compressible stream.
	ZeroRAM bool
	// RAMFile, for a keystream source, is an existing file of MemSize
	// keystream bytes (see WriteKeystreamFile) to map privately instead of
	// writing a fresh one: the VM neither changes nor removes it, so one
	// file serves any number of VMs. "" writes a file of the VM's own.
	RAMFile string
	// Args are appended to QEMU's command line, e.g. -object specs.
	Args []string
	// QEMU is the QEMU to run; the zero value means [Default].
	QEMU QEMU
}

// VM is a running QEMU process with a QMP connection.
type VM struct {
	QEMU    QEMU // the QEMU this VM runs
	QMP     *qmp.Client
	Dir     string // temporary directory of this VM (QMP socket, log)
	MemPath string // keystream source: the RAM file
	MemSize int64

	ownRAM  bool // MemPath was written by Start and is removed by Close
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	stop    func() bool // stops the kill on ctx's end
}

// ShmDir returns /dev/shm when it is a directory, else os.TempDir(): the
// place for RAM files, which then live in memory rather than on disk.
func ShmDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// Start starts QEMU as opts describes and connects QMP, with migration's
// max-bandwidth lifted (QEMU 7.2 throttles to 128 MiB/s by default). ctx
// bounds the start, and its end later kills the VM. On error nothing is
// left behind.
func Start(ctx context.Context, opts Options) (*VM, error) {
	if opts.MemSize == 0 {
		opts.MemSize = DefaultMemSize
	}
	if opts.MemSize < 0 || opts.MemSize%(1<<20) != 0 {
		return nil, fmt.Errorf("qemuvm: guest RAM %d bytes is not a positive multiple of 1 MiB", opts.MemSize)
	}
	q := opts.QEMU
	if q.Path == "" {
		var err error
		if q, err = Default(); err != nil {
			return nil, err
		}
	}
	// A short directory of our own: unix socket paths are limited to 107
	// bytes.
	dir, err := os.MkdirTemp("", "qemuvm")
	if err != nil {
		return nil, fmt.Errorf("qemuvm: %w", err)
	}
	vm := &VM{QEMU: q, Dir: dir, MemSize: opts.MemSize, logPath: filepath.Join(dir, "qemu.log"), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			vm.Close()
		}
	}()
	mem := fmt.Sprintf("%dM", opts.MemSize>>20)
	qmpPath := filepath.Join(dir, "qmp.sock")
	args := []string{"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "pc,accel=tcg,memory-backend=" + RAMBlock, "-m", mem,
		"-qmp", "unix:" + qmpPath + ",server=on,wait=off"}
	switch {
	case opts.Incoming:
		args = append(args, "-object", "memory-backend-ram,id="+RAMBlock+",size="+mem, "-incoming", "defer")
	case opts.ZeroRAM:
		args = append(args, "-object", "memory-backend-ram,id="+RAMBlock+",size="+mem, "-S")
	case opts.RAMFile != "":
		fi, err := os.Stat(opts.RAMFile)
		if err != nil {
			return nil, fmt.Errorf("qemuvm: RAM file: %w", err)
		}
		if fi.Size() != opts.MemSize {
			return nil, fmt.Errorf("qemuvm: RAM file %s holds %d bytes, want the guest's %d", opts.RAMFile, fi.Size(), opts.MemSize)
		}
		vm.MemPath = opts.RAMFile
		// share=off: a private mapping, so nothing the guest or QEMU
		// might write reaches the file other VMs map.
		args = append(args, "-object", "memory-backend-file,id="+RAMBlock+",size="+mem+",mem-path="+vm.MemPath+",share=off", "-S")
	default:
		f, err := os.CreateTemp(ShmDir(), "qemuvm-ram-")
		if err != nil {
			return nil, fmt.Errorf("qemuvm: RAM file: %w", err)
		}
		f.Close()
		vm.MemPath, vm.ownRAM = f.Name(), true
		if err := WriteKeystreamFile(vm.MemPath, opts.MemSize); err != nil {
			return nil, err
		}
		args = append(args, "-object", "memory-backend-file,id="+RAMBlock+",size="+mem+",mem-path="+vm.MemPath+",share=on", "-S")
	}
	args = append(args, opts.Args...)
	logf, err := os.Create(vm.logPath)
	if err != nil {
		return nil, fmt.Errorf("qemuvm: %w", err)
	}
	defer logf.Close()
	// Not CommandContext: ctx's end kills QEMU through vm.stop below,
	// which Close can cancel.
	cmd := q.Command(context.Background(), args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemuvm: starting %s: %w", q.Path, err)
	}
	vm.cmd = cmd
	go func() { cmd.Wait(); close(vm.done) }()
	// Only the process: the QMP connection then ends by itself, and this
	// goroutine never touches what the caller's goroutine uses.
	vm.stop = context.AfterFunc(ctx, func() { cmd.Process.Kill() })

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		c, err := qmp.Dial(sctx, qmpPath)
		if err == nil {
			vm.QMP = c
			break
		}
		select {
		case <-vm.done:
			return nil, fmt.Errorf("qemuvm: %s exited at start: %s", q, vm.Log())
		case <-sctx.Done():
			return nil, fmt.Errorf("qemuvm: QMP did not come up at %s: %v; QEMU says: %s", qmpPath, err, vm.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := vm.QMP.SetParameters(sctx, map[string]any{"max-bandwidth": int64(1) << 40}); err != nil {
		return nil, fmt.Errorf("qemuvm: %w", err)
	}
	ok = true
	return vm, nil
}

// Pid returns QEMU's process ID.
func (vm *VM) Pid() int {
	if vm.cmd == nil || vm.cmd.Process == nil {
		return 0
	}
	return vm.cmd.Process.Pid
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

// Done is closed when the QEMU process has ended and been reaped.
func (vm *VM) Done() <-chan struct{} { return vm.done }

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
// idempotent and safe to call from any goroutine.
func (vm *VM) Kill() {
	if vm.QMP != nil {
		vm.QMP.Close()
	}
	if vm.cmd != nil && vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
		<-vm.done
	}
}

// Close kills QEMU (Kill) and removes the VM's directory and the RAM file
// it wrote. It is idempotent.
func (vm *VM) Close() error {
	if vm.stop != nil {
		vm.stop()
	}
	vm.Kill()
	err := os.RemoveAll(vm.Dir)
	if vm.ownRAM {
		if e := os.Remove(vm.MemPath); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = errors.Join(err, e)
		}
	}
	if err != nil {
		return fmt.Errorf("qemuvm: %w", err)
	}
	return nil
}

// SaveStream migrates vm to exec:cat > path (the classic way to save a
// QEMU stream to a file) and waits until QEMU reports completed, or ctx
// ends.
func (vm *VM) SaveStream(ctx context.Context, path string) error {
	if strings.ContainsRune(path, '\'') {
		return fmt.Errorf("qemuvm: path %q contains a single quote", path)
	}
	return vm.Save(ctx, "exec:cat > '"+path+"'")
}

// Save migrates vm to uri, such as "file:PATH,offset=4096" (QEMU 8.2 and
// later), with the capabilities set before, and waits until QEMU reports
// completed, or ctx ends.
func (vm *VM) Save(ctx context.Context, uri string) error {
	if err := vm.QMP.Migrate(ctx, uri); err != nil {
		return fmt.Errorf("qemuvm: %w", err)
	}
	if _, err := vm.QMP.WaitMigration(ctx, 10*time.Millisecond); err != nil {
		return fmt.Errorf("qemuvm: saving the stream to %s: %w; QEMU says: %s", uri, err, vm.Log())
	}
	return nil
}
