package cli

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"4096", 4096, false},
		{"128M", 128 << 20, false}, // QEMU -m spelling
		{"1G", 1 << 30, false},
		{"1.5k", 1536, false},
		{"2T", 2 << 40, false},
		{"10b", 10, false},
		{"", 0, true},
		{"M", 0, true},
		{"-1M", 0, true},
		{"12Q", 0, true},
		{"99999999T", 0, true}, // above 2^62
		{"NaN", 0, true},       // strconv.ParseFloat accepts it; no comparison rejects it
		{"nanM", 0, true},
		{"infK", 0, true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFlagSet(t *testing.T) {
	var stderr strings.Builder
	fs := NewFlagSet("x", Usage{Synopsis: "x --a N", Description: "does x", Examples: []string{"x --a 1"}}, &stderr)
	fs.Int("a", 3, "a number (e.g. 1)")
	if ok, code := Parse(fs, []string{"--help"}, &stderr); ok || code != 0 {
		t.Fatalf("--help: ok %v code %d", ok, code)
	}
	help := stderr.String()
	for _, want := range []string{"usage: x --a N", "--a int", "(default 3)", "examples:\n  x --a 1"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	stderr.Reset()
	if ok, code := Parse(fs, []string{"--b"}, &stderr); ok || code != 2 || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("bad flag: ok %v code %d stderr %q", ok, code, stderr.String())
	}
}

func TestFail(t *testing.T) {
	var stderr strings.Builder
	if code := Fail(&stderr, "x", errString("a\nb")); code != 1 || stderr.String() != "x: a; b\n" {
		t.Fatalf("code %d, %q", code, stderr.String())
	}
}

type errString string

func (e errString) Error() string { return string(e) }
