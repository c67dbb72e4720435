package testpki

import "testing"

// New writes material per opts (nil means the zero Options) into a fresh
// t.TempDir(), as [Write] does, and fails the test on error. The files
// are removed when the test ends.
func New(t testing.TB, opts *Options) *PKI {
	t.Helper()
	p, err := Write(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
