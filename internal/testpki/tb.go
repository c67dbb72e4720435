package testpki

import "testing"

// New writes material per opts into a fresh t.TempDir() and fails the test
// on error.
func New(t testing.TB, opts *Options) *PKI {
	t.Helper()
	p, err := Write(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
