package crypto_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// TestRegistryAddTypedNil: a nil *Creds or nil authz pointer inside the
// Object interface is refused with an error, not a panic in ID.
func TestRegistryAddTypedNil(t *testing.T) {
	for _, obj := range []crypto.Object{
		(*crypto.Creds)(nil),
		(*crypto.AuthzSimple)(nil),
		(*crypto.AuthzList)(nil),
		nil,
	} {
		r := crypto.NewRegistry()
		err := r.Add(obj)
		if err == nil || !strings.Contains(err.Error(), "nil object") {
			t.Errorf("Add(%T(nil)) = %v, want a nil object error", obj, err)
		}
		if ids := r.IDs(); len(ids) != 0 {
			t.Errorf("Add(%T(nil)) registered %q", obj, ids)
		}
	}
}

// TestParseObjectFailureIsNil: a credentials object that fails to load is
// returned as a nil Object, not as a nil *Creds inside the interface.
func TestParseObjectFailureIsNil(t *testing.T) {
	dir := t.TempDir() // empty: nothing to load
	for _, spec := range []string{
		"tls-creds-x509,id=x0,endpoint=server,dir=" + dir,
		"tls-creds-psk,id=p0,endpoint=server,dir=" + dir,
	} {
		obj, err := crypto.ParseObject(spec)
		if err == nil {
			t.Fatalf("ParseObject(%q) loaded an empty directory", spec)
		}
		if obj != nil {
			t.Errorf("ParseObject(%q) = %#v (%T), %v; want a nil Object with the error", spec, obj, obj, err)
		}
	}
}

// TestRegistryLogsIgnoredPriority: adding credentials with a priority string
// to a Registry with a Logf reports, once, that it is ignored; credentials
// without one, and a Registry without Logf, stay silent.
func TestRegistryLogsIgnoredPriority(t *testing.T) {
	p, err := testpki.Write(t.TempDir(), &testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	r := crypto.NewRegistry()
	r.Logf = func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }
	for _, spec := range []string{
		"tls-creds-x509,id=tls0,endpoint=server,dir=" + p.ServerDir + ",priority=NORMAL:-VERS-TLS1.0",
		"tls-creds-x509,id=tls1,endpoint=server,dir=" + p.ServerDir,
		"tls-creds-anon,id=anon0,endpoint=client,priority=NORMAL:+ANON-DH",
	} {
		if err := r.AddObject(spec); err != nil {
			t.Fatalf("AddObject(%q) = %v", spec, err)
		}
	}
	want := []string{
		`crypto: tls-creds tls0: priority="NORMAL:-VERS-TLS1.0" is ignored: crypto/tls chooses its own cipher suites`,
		`crypto: tls-creds anon0: priority="NORMAL:+ANON-DH" is ignored: crypto/tls chooses its own cipher suites`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("Logf lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// A duplicate is refused, and logs nothing more.
	lines = nil
	if err := r.AddObject("tls-creds-anon,id=anon0,endpoint=client,priority=X"); err == nil {
		t.Fatal("duplicate id accepted")
	}
	if len(lines) != 0 {
		t.Errorf("refused Add logged %q", lines)
	}
	// Without Logf the priority is still accepted, silently.
	if err := crypto.NewRegistry().AddObject("tls-creds-anon,id=a,endpoint=server,priority=NORMAL"); err != nil {
		t.Fatal(err)
	}
}
