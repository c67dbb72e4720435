package qemutest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestQEMUToQEMU migrates a keystream guest between two QEMUs of each
// installed version over a unix socket, the baseline the proxy scenarios
// build on.
func TestQEMUToQEMU(t *testing.T) {
	Each(t, qemuToQEMU)
}

func qemuToQEMU(t *testing.T, q QEMU) {
	src := Start(t, Options{QEMU: q, MemSize: 32 << 20})
	dst := Start(t, Options{QEMU: q, MemSize: 32 << 20, Incoming: true})
	if got := src.QMP.Greeting(); got.Major != q.Major || got.Minor != q.Minor || got.Micro != q.Micro {
		t.Fatalf("QMP greets as %d.%d.%d, want %s", got.Major, got.Minor, got.Micro, q)
	}
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

// TestCICoverage: CI must have a 7.x and a 10-or-later QEMU.
func TestCICoverage(t *testing.T) {
	q72 := QEMU{Version: "7.2.22", Major: 7, Minor: 2, Micro: 22}
	q10 := QEMU{Version: "10.0.2", Major: 10, Micro: 2}
	q82 := QEMU{Version: "8.2.1", Major: 8, Minor: 2, Micro: 1}
	if err := ciCoverage([]QEMU{q72, q10}); err != nil {
		t.Errorf("7.2 and 10.0: %v", err)
	}
	for _, list := range [][]QEMU{nil, {q72}, {q10}, {q72, q82}} {
		if err := ciCoverage(list); err == nil {
			t.Errorf("%v accepted", list)
		}
	}
}
