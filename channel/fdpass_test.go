//go:build linux

package channel_test

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

// TestPassFile sends the write end of a pipe over a unix socket; the
// receiver writes through it and the sender reads that back from the read
// end.
func TestPassFile(t *testing.T) {
	sender, receiver := unixPair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var fp channel.FDPasser = sender
	if n, err := fp.WriteFiles([]byte("take this"), []*os.File{w}); n != 9 || err != nil {
		t.Fatalf("WriteFiles = %d, %v", n, err)
	}
	w.Close() // the receiver's copy is now the only write end

	buf := make([]byte, 64)
	receiver.SetReadDeadline(testwait.Deadline(t))
	n, files, err := receiver.ReadFiles(buf, 4)
	if err != nil || string(buf[:n]) != "take this" || len(files) != 1 {
		t.Fatalf("ReadFiles = %q, %d files, %v; want %q and 1 file", buf[:n], len(files), err, "take this")
	}
	got := files[0]
	rc, _ := got.SyscallConn()
	var flags int
	rc.Control(func(fd uintptr) { flags, _ = unix.FcntlInt(fd, unix.F_GETFD, 0) })
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received descriptor is not close-on-exec")
	}
	if _, err := got.Write([]byte("written by the receiver")); err != nil {
		t.Fatalf("writing through the received file: %v", err)
	}
	got.Close()
	r.SetReadDeadline(testwait.Deadline(t))
	back, err := io.ReadAll(r)
	if err != nil || string(back) != "written by the receiver" {
		t.Fatalf("read back %q, %v", back, err)
	}
}

func TestPassFileLimits(t *testing.T) {
	sender, receiver := unixPair(t)
	var files []*os.File
	for range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		files = append(files, w)
	}
	t.Run("more than maxFiles", func(t *testing.T) {
		if _, err := sender.WriteFiles([]byte("3"), files); err != nil {
			t.Fatal(err)
		}
		receiver.SetReadDeadline(testwait.Deadline(t))
		n, got, err := receiver.ReadFiles(make([]byte, 1), 1)
		for _, f := range got {
			f.Close()
		}
		if n != 1 || len(got) != 1 || err == nil || !strings.Contains(err.Error(), "more than 1 files arrived") {
			t.Fatalf("ReadFiles(max 1) of 3 = %d, %d files, %v; want 1, 1 file and an error", n, len(got), err)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		many := make([]*os.File, channel.MaxFiles+1)
		for i := range many {
			many[i] = files[0]
		}
		for name, err := range map[string]error{
			"too many files": second(sender.WriteFiles([]byte("x"), many)),
			"no data":        second(sender.WriteFiles(nil, files[:1])),
			"nil file":       second(sender.WriteFiles([]byte("x"), []*os.File{nil})),
			"maxFiles 0":     third(receiver.ReadFiles(make([]byte, 1), 0)),
			"maxFiles 17":    third(receiver.ReadFiles(make([]byte, 1), channel.MaxFiles+1)),
		} {
			if err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
	t.Run("tcp", func(t *testing.T) {
		c, _ := tcpPair("tcp4", "127.0.0.1")(t)
		if _, err := c.WriteFiles([]byte("x"), files[:1]); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("WriteFiles on tcp = %v, want errors.ErrUnsupported", err)
		}
		if _, _, err := c.ReadFiles(make([]byte, 1), 1); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("ReadFiles on tcp = %v, want errors.ErrUnsupported", err)
		}
	})
	t.Run("plain bytes and EOF", func(t *testing.T) {
		a, b := unixPair(t)
		a.Write([]byte("no files"))
		a.Shutdown(channel.Write)
		buf := make([]byte, 8)
		n, got, err := b.ReadFiles(buf, 2)
		if n != 8 || len(got) != 0 || err != nil {
			t.Fatalf("ReadFiles = %d, %d files, %v", n, len(got), err)
		}
		if n, _, err := b.ReadFiles(buf, 2); n != 0 || err != io.EOF {
			t.Fatalf("ReadFiles at EOF = %d, %v; want io.EOF", n, err)
		}
	})
}

func second[T any](_ T, err error) error { return err }

func third[A, B any](_ A, _ B, err error) error { return err }
