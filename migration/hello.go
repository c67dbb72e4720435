package migration

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/hello"
)

// SessionID identifies one migration across its channels.
type SessionID [16]byte

// String formats id as a UUID, such as "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".
func (id SessionID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// IsZero reports whether id is all zeros ("any session").
func (id SessionID) IsZero() bool { return id == SessionID{} }

// roleOf returns the role of channel i of a session.
func roleOf(i int) hello.Role { return hello.RoleOf(i) }

// decodeHello decodes and validates the hello b (see
// hello.Hello.UnmarshalBinary), with this package's errors: a wrong magic
// or version is a *HelloMismatchError, and every other error names the
// field and its value.
func decodeHello(b []byte) (*hello.Hello, error) {
	h := new(hello.Hello)
	if err := h.UnmarshalBinary(b); err != nil {
		var me *hello.MismatchError
		if errors.As(err, &me) {
			return nil, &HelloMismatchError{Field: me.Field, Local: me.Local, Remote: me.Remote}
		}
		return nil, fmt.Errorf("migration: %w", err)
	}
	return h, nil
}

// placeFunc decides, on the side that accepted a connection, whether the
// request fits; who is the peer's identity (see peerIdentity). It returns
// the status of the reply and, when refusing, the local error. It may
// adjust the reply (the session ID it assigned). req has passed
// decodeHello and checkPeer.
type placeFunc func(req *hello.Hello, who string, reply *hello.Hello) (hello.Status, error)

// helloOneWay reports whether a source on transport t sends a one-way
// hello: exec and file streams may end in a process or a file that cannot
// answer.
func helloOneWay(t string) bool { return t == "exec" || t == "file" }

// exchangeHello runs the hello on ch. The side that opened the connection
// (initiator) writes its request and, unless oneWay, reads the reply; the
// other side reads the request, calls place with who, the peer's identity,
// and, unless the request is one-way, writes the reply. It returns the peer's hello (nil for a one-way
// initiator). Reads are exactly hello.Size bytes, so no stream byte is
// consumed.
func exchangeHello(ctx context.Context, ch channel.Channel, local hello.Hello, initiator, oneWay bool, timeout time.Duration, who string, place placeFunc) (*hello.Hello, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, &timeoutError{"hello", timeout})
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ch.Close() })
	peer, err := exchangeHelloIO(ch, local, initiator, oneWay, who, place)
	if !stop() {
		if c := context.Cause(ctx); c != nil {
			return nil, c
		}
	}
	return peer, err
}

func exchangeHelloIO(ch channel.Channel, local hello.Hello, initiator, oneWay bool, who string, place placeFunc) (*hello.Hello, error) {
	var buf [hello.Size]byte
	local.Version = hello.Version
	write := func(h *hello.Hello) error {
		h.AppendBinary(buf[:0])
		if _, err := ch.Write(buf[:]); err != nil {
			return fmt.Errorf("migration: writing hello: %w", err)
		}
		return nil
	}
	read := func() error {
		if _, err := io.ReadFull(ch, buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("migration: reading hello: %w", err)
		}
		return nil
	}
	if initiator {
		local.Reply, local.OneWay, local.Status = false, oneWay, hello.StatusOK
		if err := write(&local); err != nil {
			return nil, err
		}
		if oneWay {
			return nil, nil
		}
		if err := read(); err != nil {
			return nil, err
		}
		peer, err := decodeHello(buf[:])
		if err != nil {
			return nil, err
		}
		if !peer.Reply {
			return nil, &HelloMismatchError{Field: "kind", Local: "reply", Remote: "request"}
		}
		if peer.Status != hello.StatusOK {
			return nil, newRefusedError(local.Session, int(local.Index), peer.Status)
		}
		if err := checkPeer(&local, peer); err != nil {
			return nil, err
		}
		if id := SessionID(local.Session); !id.IsZero() && peer.Session != id {
			return nil, &HelloMismatchError{Field: "session", Local: id.String(), Remote: SessionID(peer.Session).String()}
		}
		// A reply that accepts names the channel it accepted.
		if peer.Role != local.Role || peer.Index != local.Index || peer.Channels != local.Channels {
			return nil, &HelloMismatchError{Field: "role",
				Local:  fmt.Sprintf("%s %d of %d", local.Role, local.Index, local.Channels),
				Remote: fmt.Sprintf("%s %d of %d", peer.Role, peer.Index, peer.Channels)}
		}
		return peer, nil
	}
	if err := read(); err != nil {
		return nil, err
	}
	peer, reply, err := answerHello(&local, buf[:], who, place)
	if reply != nil {
		if werr := write(reply); err == nil && werr != nil {
			return nil, werr
		}
	}
	if err != nil {
		return nil, err
	}
	return peer, nil
}

// answerHello is the accepting side's half of the hello, without I/O: it
// decodes the request b from the peer whose identity is who (see
// peerIdentity), checks it and asks place for its slot. It returns the
// peer's hello when the channel is accepted, and the reply to send (nil
// when none is due: a one-way request, or bytes that are not a livemig
// request). Every refusal has a non-OK status and an error saying why.
func answerHello(local *hello.Hello, b []byte, who string, place placeFunc) (peer, reply *hello.Hello, err error) {
	refuse := func(st hello.Status, err error) (*hello.Hello, *hello.Hello, error) {
		if err == nil {
			err = fmt.Errorf("migration: refused channel: %s", st)
		}
		// The refusal carries a code and our role only: not the peer's
		// values, and not the session this side expects, which the peer
		// could then simply announce.
		return nil, &hello.Hello{Version: hello.Version, Reply: true, Role: local.Role, Source: local.Source, Status: st}, err
	}
	peer, err = decodeHello(b)
	if err != nil {
		// A livemig request of our version that breaks a rule gets a
		// refusal; anything else (another protocol, another version, a
		// reply, a one-way request) gets no answer.
		if hello.Answerable(b) {
			return refuse(hello.StatusMismatch, err)
		}
		return nil, nil, err
	}
	if peer.Reply {
		return nil, nil, &HelloMismatchError{Field: "kind", Local: "request", Remote: "reply"}
	}
	st, err := hello.StatusMismatch, checkPeer(local, peer)
	if err == nil {
		r := *local
		r.Reply, r.OneWay, r.Status = true, false, hello.StatusOK
		if st, err = place(peer, who, &r); st == hello.StatusOK && err == nil {
			if peer.OneWay {
				return peer, nil, nil
			}
			return peer, &r, nil
		}
		if st == hello.StatusOK { // a placeFunc must not accept with an error
			st = hello.StatusRefused
		}
	}
	if peer.OneWay {
		if err == nil {
			err = fmt.Errorf("migration: refused channel: %s", st)
		}
		return nil, nil, err
	}
	return refuse(st, err)
}

// checkPeer checks what both sides of any connection must agree on.
func checkPeer(local, peer *hello.Hello) error {
	if local.Source == peer.Source {
		dir := func(src bool) string {
			if src {
				return "source"
			}
			return "destination"
		}
		return &HelloMismatchError{Field: "direction", Local: dir(local.Source), Remote: dir(peer.Source)}
	}
	return nil
}

// defaultPlace is the placement of a Listener without a Server: the request
// must name the configured session, if any.
func defaultPlace(cfg *Config) placeFunc {
	return func(req *hello.Hello, _ string, reply *hello.Hello) (hello.Status, error) {
		if !cfg.SessionID.IsZero() && req.Session != cfg.SessionID {
			return hello.StatusMismatch, &HelloMismatchError{Field: "session", Local: cfg.SessionID.String(), Remote: SessionID(req.Session).String()}
		}
		reply.Session = req.Session
		reply.Role, reply.Index, reply.Channels = req.Role, req.Index, req.Channels
		return hello.StatusOK, nil
	}
}
