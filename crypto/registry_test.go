package crypto_test

import (
	"strings"
	"testing"

	"github.com/livemig/livemig/crypto"
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
