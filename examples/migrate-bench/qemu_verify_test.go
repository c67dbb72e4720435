package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/qemuvm"
	"github.com/livemig/livemig/internal/testwait"
)

// TestQEMUDestinationChecked: a QEMU-to-QEMU run whose destination ends
// up with a page that differs from the keystream fails, naming the page.
// The source's RAM file has one byte flipped, as a transport or proxy
// that changed it on the way would leave the destination.
func TestQEMUDestinationChecked(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) { qEMUDestinationChecked(t, q) })
}

func qEMUDestinationChecked(t *testing.T, q qemutest.QEMU) {
	noLeaks(t)
	const size = 16 << 20
	dir := t.TempDir()
	ram := filepath.Join(dir, "ram")
	if err := qemuvm.WriteKeystreamFile(ram, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(ram, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, 0x5000+100); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 0x5000+100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e := &env{size: size, exe: mustExecutable(t), dir: dir, stderr: os.Stderr, qemuRAM: ram, qemu: q}
	ctx := testwait.Context(t)
	_, err = runQEMU(ctx, e, qemuPlain)
	if err == nil || !strings.Contains(err.Error(), "guest page at 0x5000 does not hold the keystream") {
		t.Fatalf("a destination with a changed page 0x5000: %v", err)
	}
}
