//go:build linux

package channel_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/livemig/livemig/channel"
)

// TestStartArgvVerbatim: every argument reaches the program as it is,
// with no shell to split, expand or unquote it.
func TestStartArgvVerbatim(t *testing.T) {
	printf, err := exec.LookPath("printf")
	if err != nil {
		t.Skip("no printf:", err)
	}
	args := []string{"a b", "$HOME", `'q' "d"`, "`id`", "x;y", "*", ""}
	c, err := channel.StartArgv(append([]string{printf, "[%s]"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	want := "[a b][$HOME]['q' \"d\"][`id`][x;y][*][]"
	if got := string(readAllBounded(t, c)); got != want {
		t.Fatalf("printf wrote %q, want %q", got, want)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertReaped(t, c.Pid())
	if name := c.Name(); name != "exec "+printf+` "[%s]" "a b" "$HOME" "'q' \"d\"" "`+"`id`"+`" "x;y" "*" ""` {
		t.Errorf("Name() = %q", name)
	}
}

// TestStartArgvFails: a program that cannot start fails StartArgv at once,
// and argv[0] is a path, not looked up in PATH (as in QEMU).
func TestStartArgvFails(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, argv := range [][]string{{"cat"}, {"./livemig-no-such-program", "x"}} {
		c, err := channel.StartArgv(argv)
		if err == nil {
			c.Close()
			t.Fatalf("StartArgv(%q) succeeded", argv)
		}
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), argv[0]) {
			t.Errorf("StartArgv(%q): %v; want a not-found error naming %s", argv, err, argv[0])
		}
	}
	for _, argv := range [][]string{nil, {""}} {
		if c, err := channel.StartArgv(argv); err == nil {
			c.Close()
			t.Errorf("StartArgv(%q) succeeded", argv)
		}
	}
}

// TestStartArgvExitError: a non-zero exit is an ExitError that names the
// argv.
func TestStartArgvExitError(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	c, err := channel.StartArgv([]string{sh, "-c", "echo broken >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	readAllBounded(t, c)
	err = c.Close()
	var ee *channel.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Close: %v, want an ExitError with status 3", err)
	}
	want := `channel: command "` + sh + ` -c \"echo broken >&2; exit 3\"" exited with status 3; stderr: broken`
	if err.Error() != want {
		t.Errorf("message:\n got %q\nwant %q", err, want)
	}
}
