package qemuvm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeQEMU writes an executable script under prefix/usr/bin that prints
// version as QEMU's --version does, and returns its path.
func fakeQEMU(t *testing.T, prefix, version string) string {
	t.Helper()
	bin := filepath.Join(prefix, "usr", "bin", Binary)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho '" + version + "'\necho 'Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestProbe runs scripts that answer --version as QEMU 10.0.2 does, one
// with a firmware directory beside it and one without, and one that
// prints no version.
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	withData := fakeQEMU(t, filepath.Join(dir, "q10"), "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)")
	data := filepath.Join(dir, "q10", "usr", "share", "qemu")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	q, err := Probe(withData)
	if err != nil {
		t.Fatal(err)
	}
	want := QEMU{Path: withData, DataDir: data, Version: "10.0.2", Major: 10, Minor: 0, Micro: 2}
	if q != want {
		t.Fatalf("Probe = %+v, want %+v", q, want)
	}
	if q.String() != "qemu-10.0.2" || !q.AtLeast(10, 0) || !q.AtLeast(8, 2) || q.AtLeast(10, 1) {
		t.Errorf("%s: String or AtLeast wrong", q)
	}
	if args := q.Args(); len(args) < 2 || args[0] != "-L" || args[1] != data {
		t.Errorf("Args = %q, want -L %s first", args, data)
	}

	bare := fakeQEMU(t, filepath.Join(dir, "q8"), "QEMU emulator version 8.2.1")
	if q, err := Probe(bare); err != nil || q.DataDir != "" || q.Args() != nil || q.Version != "8.2.1" {
		t.Errorf("Probe(no firmware dir) = %+v, %v; want version 8.2.1 and no -L", q, err)
	}

	junk := fakeQEMU(t, filepath.Join(dir, "junk"), "not a qemu")
	if _, err := Probe(junk); err == nil || !strings.Contains(err.Error(), "printed no version") || !strings.Contains(err.Error(), "not a qemu") {
		t.Errorf("Probe(junk) = %v, want an error quoting what it printed", err)
	}
	if _, err := Probe(filepath.Join(dir, "missing")); err == nil {
		t.Error("Probe of a missing binary succeeded")
	}

	// The list: in the given order, duplicates once, and every entry
	// must run when the list is explicit.
	list, err := probeAll(withData + "," + bare + " , " + withData)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range list {
		names = append(names, q.String())
	}
	if !slices.Equal(names, []string{"qemu-10.0.2", "qemu-8.2.1"}) {
		t.Errorf("probeAll = %v", names)
	}
	for _, env := range []string{withData + ",", withData + "," + junk, filepath.Join(dir, "missing")} {
		if _, err := probeAll(env); err == nil || !strings.Contains(err.Error(), EnvQEMU) {
			t.Errorf("probeAll(%q) = %v, want an error naming %s", env, err, EnvQEMU)
		}
	}
}
