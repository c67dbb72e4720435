//go:build linux

package channel_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
)

func TestFileOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(path, []byte("HEADER--"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := channel.OpenFile(path, os.O_RDWR, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bufs := net.Buffers{[]byte("page1"), []byte("page2")}
	if n, err := f.WriteBuffers(&bufs); n != 10 || err != nil || len(bufs) != 0 {
		t.Fatalf("WriteBuffers = %d, %v", n, err)
	}
	if _, err := f.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	// Read has its own position, also from the offset.
	got, err := io.ReadAll(f)
	if err != nil || string(got) != "page1page2!" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	b := make([]byte, 6)
	if n, err := f.ReadAt(b, 2); n != 6 || err != nil || string(b) != "ADER--" {
		t.Errorf("ReadAt = %q, %v", b[:n], err)
	}
	if _, err := f.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if pos, err := f.Seek(0, io.SeekStart); pos != 0 || err != nil {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	all, _ := io.ReadAll(f)
	if string(all) != "headER--page1page2!" {
		t.Errorf("file holds %q", all)
	}
	if err := f.Shutdown(channel.Write); err != nil {
		t.Fatalf("Shutdown(Write) (fsync): %v", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write after Shutdown(Write) = %v, want EPIPE", err)
	}
	if err := f.Shutdown(channel.Read); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(b); err != io.EOF {
		t.Errorf("Read after Shutdown(Read) = %v, want io.EOF", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if err := f.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
}

func TestOpenFileRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	listen(t, "unix", sock)
	tests := []struct {
		name, path string
		flag       int
		offset     int64
		want       string
	}{
		{"directory", dir, os.O_RDONLY, 0, "is a directory"},
		// Opening a fifo would block until a writer came: refused first.
		{"fifo", fifo, os.O_RDONLY, 0, "is a fifo, which cannot seek"},
		{"socket", sock, os.O_RDONLY, 0, "is a socket, which cannot seek"},
		{"missing", filepath.Join(dir, "nope"), os.O_RDONLY, 0, "no such file or directory"},
		{"negative offset", filepath.Join(dir, "new"), os.O_RDWR | os.O_CREATE, -1, "negative offset -1"},
		{"append", filepath.Join(dir, "new"), os.O_WRONLY | os.O_APPEND | os.O_CREATE, 0, "O_APPEND is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := channel.OpenFile(tt.path, tt.flag, 0o600, tt.offset)
			if err == nil {
				f.Close()
				t.Fatalf("OpenFile(%s) succeeded", tt.path)
			}
			want := "open file " + tt.path + ": "
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenFile = %q; want %q...%q", err, want, tt.want)
			}
		})
	}
}

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	t.Run("regular file at its offset", func(t *testing.T) {
		path := filepath.Join(dir, "f")
		os.WriteFile(path, []byte("skip|data"), 0o600)
		f, _ := os.Open(path)
		f.Seek(5, io.SeekStart)
		c, err := channel.FromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, ok := c.(*channel.File); !ok {
			t.Fatalf("FromFile(regular) = %T, want *channel.File", c)
		}
		got, _ := io.ReadAll(c)
		if string(got) != "data" {
			t.Errorf("read %q, want %q", got, "data")
		}
	})
	t.Run("pipe", func(t *testing.T) {
		r, w, _ := os.Pipe()
		cr, err := channel.FromFile(r)
		if err != nil {
			t.Fatal(err)
		}
		defer cr.Close()
		cw, err := channel.FromFile(w)
		if err != nil {
			t.Fatal(err)
		}
		defer cw.Close()
		if _, ok := cr.(*channel.FilePair); !ok {
			t.Fatalf("FromFile(pipe) = %T, want *channel.FilePair", cr)
		}
		bufs := net.Buffers{[]byte("through "), []byte("a pipe")}
		if _, err := cw.WriteBuffers(&bufs); err != nil {
			t.Fatal(err)
		}
		// Shutdown(Write) of a write-only end closes it: the reader sees EOF.
		if err := cw.Shutdown(channel.Write); err != nil {
			t.Fatal(err)
		}
		got := readAllBounded(t, cr)
		if string(got) != "through a pipe" {
			t.Errorf("read %q", got)
		}
		if _, err := cr.Write([]byte("x")); err == nil {
			t.Errorf("Write to a read-only pipe end succeeded")
		}
	})
	t.Run("character device", func(t *testing.T) {
		f, err := os.OpenFile("/dev/zero", os.O_RDWR, 0)
		if err != nil {
			t.Skip(err)
		}
		c, err := channel.FromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, ok := c.(*channel.FilePair); !ok {
			t.Fatalf("FromFile(/dev/zero) = %T, want *channel.FilePair", c)
		}
		b := []byte{1, 2, 3}
		if n, err := c.Read(b); n != 3 || err != nil || !bytes.Equal(b, []byte{0, 0, 0}) {
			t.Errorf("Read = %v, %d, %v", b, n, err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		f, _ := os.Open(dir)
		if _, err := channel.FromFile(f); err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Fatalf("FromFile(dir) = %v", err)
		}
	})
	t.Run("tcp socket", func(t *testing.T) {
		c, s := tcpPair("tcp4", "127.0.0.1")(t)
		f, err := c.NetConn().(*net.TCPConn).File()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := channel.FromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		sock, ok := ch.(*channel.Socket)
		if !ok || sock.Network() != "tcp" {
			t.Fatalf("FromFile(tcp) = %T", ch)
		}
		ch.Write([]byte("dup"))
		b := make([]byte, 3)
		if _, err := io.ReadFull(s, b); err != nil || string(b) != "dup" {
			t.Errorf("read %q, %v", b, err)
		}
	})
	t.Run("nil", func(t *testing.T) {
		if _, err := channel.FromFile(nil); err == nil {
			t.Errorf("FromFile(nil) succeeded")
		}
	})
}
