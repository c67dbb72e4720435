package main

import (
	"strings"
	"testing"
)

// TestVerifierFeedSplits feeds the pattern in pieces that start and end
// inside pages, as a Session's frames do, and checks that every page is
// counted and that a flipped byte in a page split across two pieces is
// caught, naming the page.
func TestVerifierFeedSplits(t *testing.T) {
	pat, unmap, err := newPattern()
	if err != nil {
		t.Fatal(err)
	}
	defer unmap()
	data := pat[:40*pageSize]
	pieces := []int{1, 4095, 4097, 262128, 100, 3 * pageSize}
	feed := func(v *verifier, b []byte) error {
		for i := 0; len(b) > 0; i++ {
			n := min(len(b), pieces[i%len(pieces)])
			if err := v.feed(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	v := newVerifier("t")
	if err := feed(v, data); err != nil {
		t.Fatal(err)
	}
	if v.page != 40 || v.partial != 0 {
		t.Fatalf("checked %d pages with %d bytes pending, want 40 and 0", v.page, v.partial)
	}
	bad := append([]byte(nil), data...)
	bad[2*pageSize+10] ^= 1 // page 2 is split: pieces of 1, 4095, 4097 bytes
	err = feed(newVerifier("t"), bad)
	if err == nil || !strings.Contains(err.Error(), "page 2 ") {
		t.Fatalf("flipped byte in page 2: %v", err)
	}
}
