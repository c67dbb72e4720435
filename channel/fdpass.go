package channel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// WriteFiles implements [FDPasser] over unix sockets: files travel as
// SCM_RIGHTS control data attached to the first byte of p. At most
// [MaxFiles] files per call; p must not be empty when files is not.
func (s *Socket) WriteFiles(p []byte, files []*os.File) (int, error) {
	uc, ok := s.conn.(*net.UnixConn)
	if !ok {
		return 0, s.unsupported("sendmsg", "file passing")
	}
	if len(files) == 0 {
		return s.Write(p)
	}
	if len(files) > MaxFiles {
		return 0, &OpError{Op: "sendmsg", Channel: s.name, Err: fmt.Errorf("%d files, more than the maximum of %d", len(files), MaxFiles)}
	}
	if len(p) == 0 {
		return 0, &OpError{Op: "sendmsg", Channel: s.name, Err: errors.New("files need at least one byte of data to travel with")}
	}
	fds := make([]int, len(files))
	for i, f := range files {
		if f == nil {
			return 0, &OpError{Op: "sendmsg", Channel: s.name, Err: fmt.Errorf("file %d is nil", i)}
		}
		rc, err := f.SyscallConn()
		if err != nil {
			return 0, opError("sendmsg", s.name, err)
		}
		// The descriptor stays valid while f is open; the caller keeps
		// f open until WriteFiles returns.
		if err := rc.Control(func(fd uintptr) { fds[i] = int(fd) }); err != nil {
			return 0, opError("sendmsg", s.name, err)
		}
	}
	n, _, err := uc.WriteMsgUnix(p, unix.UnixRights(fds...), nil)
	if err != nil {
		return n, opError("sendmsg", s.name, err)
	}
	if n < len(p) {
		m, err := s.Write(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadFiles implements [FDPasser] over unix sockets. Received descriptors
// are close-on-exec. If more than maxFiles arrive, the kernel discards the
// excess and ReadFiles returns the bytes and the files it did get with an
// error saying so.
func (s *Socket) ReadFiles(p []byte, maxFiles int) (int, []*os.File, error) {
	uc, ok := s.conn.(*net.UnixConn)
	if !ok {
		return 0, nil, s.unsupported("recvmsg", "file passing")
	}
	if maxFiles < 1 || maxFiles > MaxFiles {
		return 0, nil, &OpError{Op: "recvmsg", Channel: s.name, Err: fmt.Errorf("maxFiles %d out of range 1..%d", maxFiles, MaxFiles)}
	}
	oob := make([]byte, unix.CmsgSpace(maxFiles*4))
	n, oobn, flags, _, err := uc.ReadMsgUnix(p, oob)
	var files []*os.File
	if oobn > 0 {
		var perr error
		files, perr = parseRights(oob[:oobn])
		if err == nil {
			err = perr
		}
	}
	if len(files) > maxFiles {
		// The control buffer is padded to alignment and may hold more.
		for _, f := range files[maxFiles:] {
			f.Close()
		}
		files = files[:maxFiles:maxFiles]
		flags |= unix.MSG_CTRUNC
	}
	if err == nil && flags&unix.MSG_CTRUNC != 0 {
		err = fmt.Errorf("more than %d files arrived; the rest were discarded", maxFiles)
	}
	if err != nil && cause(err) == io.EOF {
		err = io.EOF
	}
	if err == io.EOF || (err == nil && n == 0 && len(p) > 0 && len(files) == 0) {
		return 0, files, io.EOF
	}
	if err != nil {
		err = opError("recvmsg", s.name, err)
	}
	return n, files, err
}

func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parsing control data: %w", err)
	}
	var files []*os.File
	var firstErr error
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("parsing SCM_RIGHTS: %w", err)
			}
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd) // already set on Linux (MSG_CMSG_CLOEXEC)
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("fd%d", fd)))
		}
	}
	return files, firstErr
}
