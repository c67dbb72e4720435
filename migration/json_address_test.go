package migration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/uri"
)

// channelJSON returns QEMU's channels JSON (one channel object) for the
// addr object addr, built with encoding/json so that every string is
// escaped as a control plane would.
func channelJSON(t testing.TB, addr map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"channel-type": "main", "addr": addr})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExecArgvNoShell saves a migration through a JSON exec address whose
// argv runs dd with no shell, into a file whose name holds spaces, '$',
// quotes and a backquote: only if no shell saw the argument does a file
// of exactly that name hold the stream. Restoring reads it back with cat,
// again from argv.
func TestExecArgvNoShell(t *testing.T) {
	dd, err := exec.LookPath("dd")
	if err != nil {
		t.Skip("no dd:", err)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Skip("no cat:", err)
	}
	ctx := testCtx(t)
	dir := t.TempDir()
	out := filepath.Join(dir, `saved $HOME 'q' "d" `+"`id`"+` a;b`)

	src, err := Dial(ctx, mustParse(t, channelJSON(t, map[string]any{
		"transport": "exec", "args": []string{dd, "of=" + out, "status=none"},
	})), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sendPages(src, 50); err != nil { // Close waits for dd
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != filepath.Base(out) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files in the directory: %q, want only %q", names, filepath.Base(out))
	}

	ln, err := Listen(ctx, mustParse(t, channelJSON(t, map[string]any{
		"transport": "exec", "args": []string{cat, out},
	})), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := ln.Accept(ctx)
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := checkPages(dst, 50); err != nil {
		t.Fatal(err)
	}
}

// TestExecArgvNoPath: as in QEMU, argv[0] is the program's path and is not
// looked up in PATH, so a bare "cat" (no file of that name in the working
// directory) fails at once, naming the program.
func TestExecArgvNoPath(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx := testCtx(t)
	a := mustParse(t, `{"channel-type":"main","addr":{"transport":"exec","args":["cat"]}}`)
	_, err := Dial(ctx, a, &Config{})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "cat") {
		t.Fatalf("Dial with argv [cat]: %v, want a not-found error naming cat", err)
	}
}

// TestUnixTightOff migrates over an abstract unix socket with QEMU's
// tight=false between two livemig ends, and checks that the padding is
// real: the tight address of the same name is another socket, which
// nobody listens on.
func TestUnixTightOff(t *testing.T) {
	name := "livemig-test-" + strconv.Itoa(os.Getpid()) + "-" + t.Name()
	padded := channelJSON(t, map[string]any{
		"transport": "socket", "type": "unix", "path": name, "abstract": true, "tight": false,
	})
	src, dst := connectPair(t, padded, &Config{}, &Config{})
	transfer(t, src, dst, 100)

	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, padded), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if s, err := channel.Dial(ctx, "unix", "@"+name); !errors.Is(err, syscall.ECONNREFUSED) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("tight dial of a padded listener: %v, want ECONNREFUSED", err)
	}
	tight := mustParse(t, "unix:@"+name)
	if st, err := Dial(ctx, tight, &Config{}); !errors.Is(err, syscall.ECONNREFUSED) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("Dial %s to a padded listener: %v, want ECONNREFUSED", tight, err)
	}
}

// TestUnixAtPath: a JSON unix path that starts with '@' and is not
// abstract names a file, as in QEMU, not an abstract socket.
func TestUnixAtPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	a := mustParse(t, `{"channel-type":"main","addr":{"transport":"socket","type":"unix","path":"@mig.sock"}}`)
	if a.Unix.Abstract || a.Unix.Path != "@mig.sock" {
		t.Fatalf("parsed %+v", a.Unix)
	}
	ctx := testCtx(t)
	ln, err := Listen(ctx, a, &Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if fi, err := os.Lstat(filepath.Join(dir, "@mig.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file @mig.sock: %v, %v", fi, err)
	}
	at := ln.AcceptTask(ctx)
	src, err := Dial(ctx, mustParse(t, a.String()), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := at.Wait(ctx)
	if err != nil {
		src.Close()
		t.Fatal(err)
	}
	transfer(t, src, dst, 10)
}

func TestUnixSockaddr(t *testing.T) {
	long := strings.Repeat("n", 107)
	for _, tt := range []struct {
		in      uri.UnixAddr
		want    string
		wantErr bool
	}{
		{uri.UnixAddr{Path: "/run/m.sock"}, "/run/m.sock", false},
		{uri.UnixAddr{Path: "/run/m.sock", Tight: uri.Off}, "/run/m.sock", false}, // QEMU ignores tight on a path
		{uri.UnixAddr{Path: "m", Abstract: true}, "@m", false},
		{uri.UnixAddr{Path: "m", Abstract: true, Tight: uri.On}, "@m", false},
		{uri.UnixAddr{Path: "m", Abstract: true, Tight: uri.Off}, "@m" + strings.Repeat("\x00", 106), false},
		{uri.UnixAddr{Path: long, Abstract: true, Tight: uri.Off}, "@" + long, false},
		{uri.UnixAddr{Path: long + "x", Abstract: true, Tight: uri.Off}, "", true},
		{uri.UnixAddr{Path: "@m"}, "./@m", false},
		{uri.UnixAddr{Path: "@" + strings.Repeat("p", 104)}, "./@" + strings.Repeat("p", 104), false},
		{uri.UnixAddr{Path: "@" + strings.Repeat("p", 105)}, "", true},
	} {
		got, err := unixSockaddr(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("unixSockaddr(%+v) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
