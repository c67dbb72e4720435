package proxy

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/migration"
)

// TestGrowSendBuffer: a unix socket gets the larger send buffer.
func TestGrowSendBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	s, err := channel.NewSocket(c)
	if err != nil {
		t.Fatal(err)
	}
	st := migration.NewStream(s)
	defer st.Close()
	before := sendBuffer(t, c)
	growSendBuffer(st)
	if after := sendBuffer(t, c); after <= before {
		t.Fatalf("SO_SNDBUF %d after, %d before: not enlarged", after, before)
	}
}

// sendBuffer returns c's SO_SNDBUF.
func sendBuffer(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var serr error
	if err := rc.Control(func(fd uintptr) { n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return n
}
