package qemuvm

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testwait"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestKeystream(t *testing.T) {
	whole := make([]byte, 3*PageSize)
	Keystream(0, whole)
	page := make([]byte, PageSize)
	Keystream(2*PageSize, page)
	if string(page) != string(whole[2*PageSize:]) {
		t.Fatal("keystream at an offset differs from the same bytes of a longer run")
	}
	var c PageChecker
	if !c.Check(PageSize, whole[PageSize:2*PageSize]) || c.Check(0, whole[PageSize:2*PageSize]) {
		t.Fatal("PageChecker disagrees with Keystream")
	}
}

// TestSharedRAMFile starts two sources on one keystream file: both map
// it, neither removes it, and a destination fed by the second holds the
// keystream. Cancelling the context kills a VM.
func TestSharedRAMFile(t *testing.T) {
	if _, err := Default(); err != nil {
		t.Skip(err)
	}
	const size = 16 << 20
	ram := filepath.Join(t.TempDir(), "ram")
	if err := WriteKeystreamFile(ram, size); err != nil {
		t.Fatal(err)
	}
	ctx := testwait.Context(t)
	a, err := Start(ctx, Options{MemSize: size, RAMFile: ram})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(ram); err != nil {
		t.Fatalf("Close removed the shared RAM file: %v", err)
	}
	vctx, vcancel := context.WithCancel(ctx)
	b, err := Start(vctx, Options{MemSize: size, RAMFile: ram})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dst, err := Start(ctx, Options{MemSize: size, Incoming: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	sock := filepath.Join(dst.Dir, "mig.sock")
	if err := dst.QMP.MigrateIncoming(ctx, "unix:"+sock); err != nil {
		t.Fatal(err)
	}
	if err := b.QMP.Migrate(ctx, "unix:"+sock); err != nil {
		t.Fatal(err)
	}
	if _, err := b.QMP.WaitMigration(ctx, 10*time.Millisecond); err != nil {
		t.Fatalf("source: %v; QEMU says: %s", err, b.Log())
	}
	if _, err := dst.QMP.WaitMigration(ctx, 10*time.Millisecond); err != nil {
		t.Fatalf("destination: %v; QEMU says: %s", err, dst.Log())
	}
	dump := filepath.Join(dst.Dir, "dump")
	if _, err := dst.QMP.Execute(ctx, "pmemsave", map[string]any{"val": 7 * PageSize, "size": PageSize, "filename": dump}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	var c PageChecker
	if !c.Check(7*PageSize, got) {
		t.Fatal("destination page 7 does not hold the keystream")
	}
	vcancel()
	testwait.Recv(t, "the VM ending after Start's context was cancelled", b.Done())
}

// TestOwnRAMFileRemoved: a source's own RAM file is removed by Close.
func TestOwnRAMFileRemoved(t *testing.T) {
	if _, err := Default(); err != nil {
		t.Skip(err)
	}
	ctx := testwait.Context(t)
	vm, err := Start(ctx, Options{MemSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(vm.MemPath) != ShmDir() {
		t.Errorf("RAM file %s is not in %s", vm.MemPath, ShmDir())
	}
	if err := vm.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{vm.MemPath, vm.Dir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind after Close (%v)", p, err)
		}
	}
}
