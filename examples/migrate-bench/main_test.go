package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary play the children: the cases re-execute
// os.Executable(), which under go test is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(childMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runJSON runs the tool with args plus --json and returns its results by
// case name, failing t when the exit code is not want.
func runJSON(t *testing.T, want int, args ...string) map[string]*result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append(args, "--json"), &stdout, &stderr)
	if code != want {
		t.Fatalf("run %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, stdout.String(), stderr.String())
	}
	rs := map[string]*result{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("run %v: stdout line %q: %v", args, line, err)
		}
		rs[r.Case] = &r
	}
	return rs
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--size", "1000"}, "multiple of 4096"},
		{[]string{"--runs", "0"}, "--runs 0"},
		{[]string{"--only", "nonsense"}, `unknown case "nonsense"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--timeout", "0s"}, "--timeout 0s is not positive"},
		{[]string{"--only", " , "}, `--only " , " names no case`},
		{[]string{"--only", "unix-raw", "--size", "4M", "--timeout", "1ns"}, "stopped before the end: --timeout 1ns reached"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code == 0 {
			t.Errorf("run %v: exit 0, want an error", tc.args)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run %v: stderr %q does not contain %q", tc.args, stderr.String(), tc.want)
		}
	}
}

func TestUnknownChildRole(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := childMain([]string{"no-such-role"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown role "no-such-role"`) {
		t.Fatalf("stderr %q", stderr.String())
	}
}
