package qemuopt

import "testing"

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		in    string
		v, ok bool
	}{
		// qapi_bool_parse (qapi/qapi-util.c, QEMU 7.2.0 and 10.0.2).
		{"on", true, true}, {"yes", true, true}, {"true", true, true}, {"y", true, true},
		{"off", false, true}, {"no", false, true}, {"false", false, true}, {"n", false, true},
		// Exact match only: no case folding, no numbers, no empty value.
		{"ON", false, false}, {"True", false, false}, {"1", false, false}, {"0", false, false},
		{"", false, false}, {" on", false, false}, {"of", false, false},
	} {
		v, ok := ParseBool(tc.in)
		if v != tc.v || ok != tc.ok {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, %v", tc.in, v, ok, tc.v, tc.ok)
		}
	}
}

func TestBadID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		// id_wellformed (util/id.c).
		{"tls0", -1}, {"a", -1}, {"A-b.c_d9", -1},
		{"", 0}, {"0tls", 0}, {"_x", 0}, {"-x", 0}, {"#block1", 0},
		{"tls 0", 3}, {"tls,0", 3}, {"tlsé", 3}, {"a/b", 1},
	} {
		if got := BadID(tc.in); got != tc.want {
			t.Errorf("BadID(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
