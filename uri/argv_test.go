package uri

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestExecArgv: ExecArgv gives what Parse gives for the same JSON, keeps
// the arguments verbatim, and refuses what the JSON would.
func TestExecArgv(t *testing.T) {
	args := []string{"/usr/bin/ssh", "host b", "cat > '$HOME/x'", "\t\"q\"\\"}
	a, err := ExecArgv(args...)
	if err != nil {
		t.Fatal(err)
	}
	if a.Transport != Exec || a.Command != "" || !slices.Equal(a.Args.Strings(), args) {
		t.Fatalf("ExecArgv = %+v, want argv %q", a, args)
	}
	if b, err := Parse(a.String()); err != nil || b != a {
		t.Fatalf("Parse(%s) = %+v, %v; want %+v", a.String(), b, err, a)
	}
	if a, err := ExecArgv("/bin/sh", "-c", "gzip -c > /tmp/x"); err != nil || a.Command != "gzip -c > /tmp/x" || !a.Args.IsZero() {
		t.Errorf("sh -c form = %+v, %v; want exec:gzip -c > /tmp/x", a, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "empty list"},
		{[]string{""}, "empty program"},
		{[]string{"a", "b\x00c"}, "NUL character"},
		{[]string{"a", "\xff"}, "not valid UTF-8"},
		{[]string{"a", strings.Repeat("x", MaxJSONLength)}, "expected at most 32768 for JSON"},
	} {
		_, err := ExecArgv(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ExecArgv(%.40q) = %v, want an error saying %q", tc.args, err, tc.want)
		}
		var e *Error
		if tc.want != "not valid UTF-8" && !errors.As(err, &e) {
			t.Errorf("ExecArgv(%.40q): %T is not an *Error", tc.args, err)
		}
	}
}
