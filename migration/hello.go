package migration

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/livemig/livemig/channel"
)

// HelloSize is the size in bytes of an encoded [Hello].
const HelloSize = 64

// HelloMagic is the first four bytes of a hello, "LMIG". It differs from
// QEMU's stream magic 0x5145564D and multifd magic 0x11223344, so a livemig
// hello is never taken for a QEMU stream or the other way round.
const HelloMagic = 0x4C4D4947

// HelloVersion is the hello version this package speaks.
const HelloVersion = 1

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

// Role is the job of a channel within a session.
type Role uint8

// Roles of a channel.
const (
	RoleMain    Role = 0 // the migration stream; index 0
	RoleMultifd Role = 1 // a parallel page channel
)

// roleOf returns the role of channel i of a session.
func roleOf(i int) Role {
	if i == 0 {
		return RoleMain
	}
	return RoleMultifd
}

// String returns "main" or "multifd".
func (r Role) String() string {
	switch r {
	case RoleMain:
		return "main"
	case RoleMultifd:
		return "multifd"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Capabilities is a set of capability bits exchanged in the hello. Bits
// this package does not name are carried through unchanged.
type Capabilities uint64

// Capability bits.
const (
	CapReturnPath Capabilities = 1 << 0 // the destination will use the return path
	CapPostcopy   Capabilities = 1 << 1 // postcopy may follow precopy
	CapStripes    Capabilities = 1 << 2 // the session stripes pages across its channels
)

// String lists the set bits, such as "return-path|0x100".
func (c Capabilities) String() string {
	if c == 0 {
		return "none"
	}
	var parts []string
	for _, n := range []struct {
		c    Capabilities
		name string
	}{{CapReturnPath, "return-path"}, {CapPostcopy, "postcopy"}, {CapStripes, "stripes"}} {
		if c&n.c != 0 {
			parts = append(parts, n.name)
			c &^= n.c
		}
	}
	if c != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint64(c)))
	}
	return strings.Join(parts, "|")
}

// Status is the answer carried by a hello reply.
type Status uint16

// Statuses of a hello reply. Requests carry StatusOK.
const (
	StatusOK             Status = 0
	StatusUnknownSession Status = 1 // no such session (a non-main channel came first)
	StatusExpiredSession Status = 2 // the session timed out or is complete
	StatusDuplicate      Status = 3 // this role and index already arrived
	StatusMismatch       Status = 4 // a field did not fit the peer's configuration
	StatusRefused        Status = 5 // refused for another reason, such as shutdown
	StatusForbidden      Status = 6 // the session belongs to another peer identity
	StatusBusy           Status = 7 // too many sessions pending: from this peer, or in all

	maxStatus = StatusBusy
)

// String describes the status.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusUnknownSession:
		return "unknown session"
	case StatusExpiredSession:
		return "expired session"
	case StatusDuplicate:
		return "duplicate channel"
	case StatusMismatch:
		return "hello mismatch"
	case StatusRefused:
		return "refused"
	case StatusForbidden:
		return "session of another peer"
	case StatusBusy:
		return "too many pending sessions"
	}
	return fmt.Sprintf("status(%d)", uint16(s))
}

// Kinds of hello.
const (
	kindRequest = 1
	kindReply   = 2
)

// Hello is the decoded form of the 64-byte hello each side sends after the
// TLS handshake; the package documentation gives its layout byte by byte.
type Hello struct {
	Version      uint8 // HelloVersion
	Reply        bool  // sent by the side that accepted the connection
	Role         Role
	Source       bool // the sender is the migration source
	OneWay       bool // a request that expects no reply (exec and file sources)
	Session      SessionID
	Index        uint16
	Channels     uint16 // channels in the session, 1..MaxChannels
	Status       Status // StatusOK in requests
	Capabilities Capabilities
}

// MarshalBinary encodes h into HelloSize bytes. It never fails.
func (h *Hello) MarshalBinary() ([]byte, error) {
	b := make([]byte, HelloSize)
	h.put(b)
	return b, nil
}

func (h *Hello) put(b []byte) {
	_ = b[HelloSize-1]
	clear(b[:HelloSize])
	binary.BigEndian.PutUint32(b[0:], HelloMagic)
	b[4] = h.Version
	b[5] = kindRequest
	if h.Reply {
		b[5] = kindReply
	}
	b[6] = byte(h.Role)
	if h.Source {
		b[7] |= 1
	}
	if h.OneWay {
		b[7] |= 2
	}
	copy(b[8:24], h.Session[:])
	binary.BigEndian.PutUint16(b[24:], h.Index)
	binary.BigEndian.PutUint16(b[26:], h.Channels)
	binary.BigEndian.PutUint16(b[28:], uint16(h.Status))
	binary.BigEndian.PutUint64(b[32:], uint64(h.Capabilities))
}

// UnmarshalBinary decodes a hello and validates every field before it
// returns any: the magic, the version, the kind, the role, the flags, the
// status (zero in a request, a known code in a reply), the reserved bytes
// (zero), and the session, index and channel count. A request, and a
// reply with StatusOK, must carry 1 <= count <= MaxChannels, index <
// count, and index 0 exactly for the main channel; a refusal (a reply with
// another status) carries no session, index, count or capabilities. On
// error h is unchanged. A wrong magic or version is a *HelloMismatchError;
// every other error names the field and its value.
func (h *Hello) UnmarshalBinary(b []byte) error {
	if len(b) != HelloSize {
		return fmt.Errorf("migration: hello is %d bytes, want %d", len(b), HelloSize)
	}
	if m := binary.BigEndian.Uint32(b); m != HelloMagic {
		what := fmt.Sprintf("%#08x", m)
		switch m {
		case 0x5145564D:
			what += " (a QEMU migration stream: use Raw)"
		case 0x11223344:
			what += " (a QEMU multifd channel)"
		}
		return &HelloMismatchError{Field: "magic", Local: fmt.Sprintf("%#08x", HelloMagic), Remote: what}
	}
	if b[4] != HelloVersion {
		return &HelloMismatchError{Field: "version", Local: fmt.Sprint(HelloVersion), Remote: fmt.Sprint(b[4])}
	}
	var n Hello
	n.Version = b[4]
	switch b[5] {
	case kindRequest:
	case kindReply:
		n.Reply = true
	default:
		return fmt.Errorf("migration: hello: unknown kind %d", b[5])
	}
	n.Role = Role(b[6])
	if n.Role > RoleMultifd {
		return fmt.Errorf("migration: hello: unknown role %d", b[6])
	}
	if b[7]&^3 != 0 {
		return fmt.Errorf("migration: hello: unknown flags %#02x", b[7])
	}
	n.Source = b[7]&1 != 0
	n.OneWay = b[7]&2 != 0
	if n.OneWay && n.Reply {
		return fmt.Errorf("migration: hello: one-way reply")
	}
	copy(n.Session[:], b[8:24])
	n.Index = binary.BigEndian.Uint16(b[24:])
	n.Channels = binary.BigEndian.Uint16(b[26:])
	n.Status = Status(binary.BigEndian.Uint16(b[28:]))
	n.Capabilities = Capabilities(binary.BigEndian.Uint64(b[32:]))
	if off := nonZero(b[30:32]); off >= 0 {
		return fmt.Errorf("migration: hello: reserved byte %d is %#02x, want 0", 30+off, b[30+off])
	}
	if off := nonZero(b[40:]); off >= 0 {
		return fmt.Errorf("migration: hello: reserved byte %d is %#02x, want 0", 40+off, b[40+off])
	}
	switch {
	case !n.Reply && n.Status != StatusOK:
		return fmt.Errorf("migration: hello: request with status %d", uint16(n.Status))
	case n.Status > maxStatus:
		return fmt.Errorf("migration: hello: unknown status %d", uint16(n.Status))
	case n.Status != StatusOK:
		// A refusal says why and nothing else (see exchangeHelloIO).
		if !n.Session.IsZero() || n.Index != 0 || n.Channels != 0 || n.Capabilities != 0 {
			return fmt.Errorf("migration: hello: refusal (%s) with a session, index, channel count or capabilities", n.Status)
		}
	case n.Channels < 1 || n.Channels > MaxChannels:
		return fmt.Errorf("migration: hello: channel count %d out of range 1..%d", n.Channels, MaxChannels)
	case n.Index >= n.Channels:
		return fmt.Errorf("migration: hello: index %d not below channel count %d", n.Index, n.Channels)
	case (n.Role == RoleMain) != (n.Index == 0):
		return fmt.Errorf("migration: hello: %s channel with index %d", n.Role, n.Index)
	}
	*h = n
	return nil
}

// nonZero returns the offset of the first non-zero byte of b, or -1.
func nonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// placeFunc decides, on the side that accepted a connection, whether the
// request fits; who is the peer's identity (see peerIdentity). It returns
// the status of the reply and, when refusing, the local error. It may
// adjust the reply (the session ID it assigned). req has passed
// UnmarshalBinary and checkPeer.
type placeFunc func(req *Hello, who string, reply *Hello) (Status, error)

// helloOneWay reports whether a source on transport t sends a one-way
// hello: exec and file streams may end in a process or a file that cannot
// answer.
func helloOneWay(t string) bool { return t == "exec" || t == "file" }

// exchangeHello runs the hello on ch. The side that opened the connection
// (initiator) writes its request and, unless oneWay, reads the reply; the
// other side reads the request, calls place with who, the peer's identity,
// and, unless the request is one-way, writes the reply. It returns the peer's hello (nil for a one-way
// initiator). Reads are exactly HelloSize bytes, so no stream byte is
// consumed.
func exchangeHello(ctx context.Context, ch channel.Channel, local Hello, initiator, oneWay bool, timeout time.Duration, who string, place placeFunc) (*Hello, error) {
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

func exchangeHelloIO(ch channel.Channel, local Hello, initiator, oneWay bool, who string, place placeFunc) (*Hello, error) {
	var buf [HelloSize]byte
	local.Version = HelloVersion
	write := func(h *Hello) error {
		h.put(buf[:])
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
		local.Reply, local.OneWay, local.Status = false, oneWay, StatusOK
		if err := write(&local); err != nil {
			return nil, err
		}
		if oneWay {
			return nil, nil
		}
		if err := read(); err != nil {
			return nil, err
		}
		peer := new(Hello)
		if err := peer.UnmarshalBinary(buf[:]); err != nil {
			return nil, err
		}
		if !peer.Reply {
			return nil, &HelloMismatchError{Field: "kind", Local: "reply", Remote: "request"}
		}
		if peer.Status != StatusOK {
			return nil, &RefusedError{Session: local.Session, Role: local.Role, Index: int(local.Index), Reason: peer.Status}
		}
		if err := checkPeer(&local, peer); err != nil {
			return nil, err
		}
		if !local.Session.IsZero() && peer.Session != local.Session {
			return nil, &HelloMismatchError{Field: "session", Local: local.Session.String(), Remote: peer.Session.String()}
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
func answerHello(local *Hello, b []byte, who string, place placeFunc) (peer, reply *Hello, err error) {
	refuse := func(st Status, err error) (*Hello, *Hello, error) {
		if err == nil {
			err = fmt.Errorf("migration: refused channel: %s", st)
		}
		// The refusal carries a code and our role only: not the peer's
		// values, and not the session this side expects, which the peer
		// could then simply announce.
		return nil, &Hello{Version: HelloVersion, Reply: true, Role: local.Role, Source: local.Source, Status: st}, err
	}
	peer = new(Hello)
	if err := peer.UnmarshalBinary(b); err != nil {
		// A livemig request of our version that breaks a rule gets a
		// refusal; anything else (another protocol, another version, a
		// reply, a one-way request) gets no answer.
		if len(b) == HelloSize && binary.BigEndian.Uint32(b) == HelloMagic && b[4] == HelloVersion && b[5] == kindRequest && b[7]&2 == 0 {
			return refuse(StatusMismatch, err)
		}
		return nil, nil, err
	}
	if peer.Reply {
		return nil, nil, &HelloMismatchError{Field: "kind", Local: "request", Remote: "reply"}
	}
	st, err := StatusMismatch, checkPeer(local, peer)
	if err == nil {
		r := *local
		r.Reply, r.OneWay, r.Status = true, false, StatusOK
		if st, err = place(peer, who, &r); st == StatusOK && err == nil {
			if peer.OneWay {
				return peer, nil, nil
			}
			return peer, &r, nil
		}
		if st == StatusOK { // a placeFunc must not accept with an error
			st = StatusRefused
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
func checkPeer(local, peer *Hello) error {
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
	return func(req *Hello, _ string, reply *Hello) (Status, error) {
		if !cfg.SessionID.IsZero() && req.Session != cfg.SessionID {
			return StatusMismatch, &HelloMismatchError{Field: "session", Local: cfg.SessionID.String(), Remote: req.Session.String()}
		}
		reply.Session = req.Session
		reply.Role, reply.Index, reply.Channels = req.Role, req.Index, req.Channels
		return StatusOK, nil
	}
}
