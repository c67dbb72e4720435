package iovec

import "testing"

// TestContinues covers each condition of the rule: adjacency within one
// array, the capacity boundary (full slice expressions), empty slices,
// gaps, the reverse order, and slices of different arrays.
func TestContinues(t *testing.T) {
	ram := make([]byte, 4*4096)
	page := func(i int) []byte { return ram[i*4096 : (i+1)*4096] }
	other := make([]byte, 4096)

	// Two arrays carved from one allocation and then capped, so the
	// second follows the first in memory exactly: only the capacity rule
	// tells them apart from one array.
	both := make([]byte, 8192)
	first, second := both[:4096:4096], both[4096:]

	for _, tc := range []struct {
		name string
		a, b []byte
		want bool
	}{
		{"next page of one array", page(0), page(1), true},
		{"run of pages and the page after", ram[:3*4096], page(3), true},
		{"part of a page and its rest", page(0)[:100], page(0)[100:], true},
		{"b shorter than the room left", page(0), ram[4096:4097], true},
		{"gap between pages", page(0), page(2), false},
		{"reverse order", page(1), page(0), false},
		{"same slice twice", page(0), page(0), false},
		{"overlapping", ram[:8192], page(1), false},
		{"different arrays", page(0), other, false},
		{"a capped where b starts (full slice expression)", first, second, false},
		{"a capped one byte short of b's end", ram[:4096:8191], page(1), false},
		{"a capped exactly at b's end", ram[:4096:8192], page(1), true},
		{"a at the end of its array", page(3), other, false},
		{"empty a", ram[4096:4096], page(1), false},
		{"empty b", page(0), ram[4096:4096], false},
		{"nil a", nil, page(0), false},
		{"nil b", page(0), nil, false},
		{"both empty", ram[:0], ram[:0], false},
	} {
		if got := Continues(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: Continues = %v, want %v", tc.name, got, tc.want)
		}
		if tc.want {
			if m := tc.a[:len(tc.a)+len(tc.b)]; &m[len(tc.a)] != &tc.b[0] || &m[len(m)-1] != &tc.b[len(tc.b)-1] {
				t.Errorf("%s: the merged slice does not cover b", tc.name)
			}
		}
	}
}

// TestContinuesDoesNotAllocate pins that the check is free on the
// per-page path.
func TestContinuesDoesNotAllocate(t *testing.T) {
	ram := make([]byte, 8192)
	a, b := ram[:4096], ram[4096:]
	if n := testing.AllocsPerRun(100, func() { _ = Continues(a, b) }); n != 0 {
		t.Errorf("Continues allocates %v times", n)
	}
}
