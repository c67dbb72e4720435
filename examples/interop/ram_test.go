package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
)

// checkSameRAM fails t unless dst's guest RAM, read with pmemsave, equals
// src's keystream RAM file. pmemsave reads guest-physical addresses: below
// 1 MiB the PC's ROMs and VGA hole shadow RAM, so the comparison starts at
// 1 MiB.
func checkSameRAM(t *testing.T, dst, src *qemutest.VM) {
	t.Helper()
	dump := filepath.Join(dst.Dir, "dump")
	if _, err := dst.QMP.Execute(testwait.Context(t), "pmemsave", map[string]any{"val": 0, "size": dst.MemSize, "filename": dump}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(src.MemPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || !bytes.Equal(got[1<<20:], want[1<<20:]) {
		t.Fatalf("destination RAM (%d bytes) differs from the source's (%d bytes) above 1 MiB", len(got), len(want))
	}
}
