package qemutest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestQEMUToQEMU migrates a keystream guest between two QEMUs over a unix
// socket, the baseline the proxy scenarios build on.
func TestQEMUToQEMU(t *testing.T) {
	src := Start(t, Options{MemSize: 32 << 20})
	dst := Start(t, Options{MemSize: 32 << 20, Incoming: true})
	ctx := Context(t, 60*time.Second)
	sock := filepath.Join(dst.Dir, "mig.sock")
	if err := dst.QMP.MigrateIncoming(ctx, "unix:"+sock); err != nil {
		t.Fatal(err)
	}
	if err := src.QMP.Migrate(ctx, "unix:"+sock); err != nil {
		t.Fatal(err)
	}
	if _, err := src.QMP.WaitMigration(ctx, 20*time.Millisecond); err != nil {
		t.Fatalf("source: %v; QEMU says: %s", err, src.Log())
	}
	info, err := dst.QMP.WaitMigration(ctx, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("destination: %v; QEMU says: %s", err, dst.Log())
	}
	if info.Status != "completed" {
		t.Fatalf("destination status %q", info.Status)
	}
	st, err := dst.QMP.QueryStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The source never ran (-S), so the destination stays in prelaunch.
	if st.Status != "prelaunch" && st.Status != "paused" {
		t.Fatalf("destination run state %q, want prelaunch or paused", st.Status)
	}
	// The destination's RAM now holds the keystream: dump a page and check.
	dump := filepath.Join(dst.Dir, "dump")
	if _, err := dst.QMP.Execute(ctx, "pmemsave", map[string]any{"val": 5 * PageSize, "size": PageSize, "filename": dump}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	var c PageChecker
	if !c.Check(5*PageSize, b) {
		t.Fatal("destination page 5 does not hold the keystream")
	}
	src.Kill()
	if !src.Exited() {
		t.Fatal("Kill returned before QEMU was reaped")
	}
}
