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
