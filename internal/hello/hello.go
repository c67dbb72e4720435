package hello

import (
	"encoding/binary"
	"fmt"
)

const (
	// Size is the size in bytes of an encoded [Hello].
	Size = 64

	// Magic is the first four bytes of a hello, "LMIG". It differs from
	// QEMU's stream magic 0x5145564D and multifd magic 0x11223344, so a
	// livemig hello is never taken for a QEMU stream or the other way
	// round.
	Magic = 0x4C4D4947

	// Version is the hello version this package speaks.
	Version = 1

	// MaxChannels is the largest channel count a hello may carry.
	MaxChannels = 256
)

// QEMU's magic numbers, recognised to explain a mismatch.
const (
	qemuStreamMagic  = 0x5145564D
	qemuMultifdMagic = 0x11223344
)

// Role is the job of a channel within a session.
type Role uint8

// Roles of a channel. The wire once also had 2 (return-path) and 3
// (postcopy); they are refused as unknown.
const (
	RoleMain    Role = 0 // the migration stream; index 0
	RoleMultifd Role = 1 // a parallel page channel; index 1..
)

// RoleOf returns the role of channel i of a session: main for 0, multifd
// for the others.
func RoleOf(i int) Role {
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

// Flags of a hello.
const (
	flagSource = 1 << 0
	flagOneWay = 1 << 1
)

// Hello is the decoded form of a hello; the package documentation gives
// its layout byte by byte. The zero Hello is not valid: Version must be
// [Version], and a request needs a channel count.
type Hello struct {
	Version  uint8 // Version
	Reply    bool  // sent by the side that accepted the connection
	Role     Role
	Source   bool // the sender is the migration source
	OneWay   bool // a request that expects no reply (exec and file sources)
	Session  [16]byte
	Index    uint16
	Channels uint16 // channels in the session, 1..MaxChannels
	Status   Status // StatusOK in requests
	Caps     uint64 // capability bits; none is defined, all are carried through
}

// MarshalBinary encodes h into Size bytes. It does not validate h, and
// never fails.
func (h *Hello) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, Size))
}

// AppendBinary appends the Size bytes of h to b, as [Hello.MarshalBinary];
// with room in b it does not allocate. It never fails.
func (h *Hello) AppendBinary(b []byte) ([]byte, error) {
	var e [Size]byte
	binary.BigEndian.PutUint32(e[0:], Magic)
	e[4] = h.Version
	e[5] = kindRequest
	if h.Reply {
		e[5] = kindReply
	}
	e[6] = byte(h.Role)
	if h.Source {
		e[7] |= flagSource
	}
	if h.OneWay {
		e[7] |= flagOneWay
	}
	copy(e[8:24], h.Session[:])
	binary.BigEndian.PutUint16(e[24:], h.Index)
	binary.BigEndian.PutUint16(e[26:], h.Channels)
	binary.BigEndian.PutUint16(e[28:], uint16(h.Status))
	binary.BigEndian.PutUint64(e[32:], h.Caps)
	return append(b, e[:]...), nil
}

// MismatchError reports a hello of another protocol or another version:
// a wrong magic or version. Local and Remote are the two values as text.
type MismatchError struct {
	Field  string // "magic" or "version"
	Local  string // what this side speaks
	Remote string // what the bytes carry
}

// Error names the field and both values.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("hello mismatch: %s: local %s, remote %s", e.Field, e.Local, e.Remote)
}

// UnmarshalBinary decodes a hello and validates every field before it
// returns any: the magic, the version, the kind, the role, the flags, the
// status (zero in a request, a known code in a reply), the reserved bytes
// (zero), and the session, index and channel count. A request, and a
// reply with StatusOK, must carry 1 <= count <= MaxChannels, index <
// count, and index 0 exactly for the main channel; a refusal (a reply with
// another status) carries no session, index, count or capabilities. On
// error h is unchanged. A wrong magic or version is a *[MismatchError];
// every other error names the field and its value.
func (h *Hello) UnmarshalBinary(b []byte) error {
	if len(b) != Size {
		return fmt.Errorf("hello is %d bytes, want %d", len(b), Size)
	}
	if m := binary.BigEndian.Uint32(b); m != Magic {
		what := fmt.Sprintf("%#08x", m)
		switch m {
		case qemuStreamMagic:
			// Raw is migration's Config.Raw, which talks to QEMU.
			what += " (a QEMU migration stream: use Raw)"
		case qemuMultifdMagic:
			what += " (a QEMU multifd channel)"
		}
		return &MismatchError{Field: "magic", Local: fmt.Sprintf("%#08x", Magic), Remote: what}
	}
	if b[4] != Version {
		return &MismatchError{Field: "version", Local: fmt.Sprint(Version), Remote: fmt.Sprint(b[4])}
	}
	var n Hello
	n.Version = b[4]
	switch b[5] {
	case kindRequest:
	case kindReply:
		n.Reply = true
	default:
		return fmt.Errorf("hello: unknown kind %d", b[5])
	}
	n.Role = Role(b[6])
	if n.Role > RoleMultifd {
		return fmt.Errorf("hello: unknown role %d", b[6])
	}
	if b[7]&^(flagSource|flagOneWay) != 0 {
		return fmt.Errorf("hello: unknown flags %#02x", b[7])
	}
	n.Source = b[7]&flagSource != 0
	n.OneWay = b[7]&flagOneWay != 0
	if n.OneWay && n.Reply {
		return fmt.Errorf("hello: one-way reply")
	}
	copy(n.Session[:], b[8:24])
	n.Index = binary.BigEndian.Uint16(b[24:])
	n.Channels = binary.BigEndian.Uint16(b[26:])
	n.Status = Status(binary.BigEndian.Uint16(b[28:]))
	n.Caps = binary.BigEndian.Uint64(b[32:])
	if off := nonZero(b[30:32]); off >= 0 {
		return fmt.Errorf("hello: reserved byte %d is %#02x, want 0", 30+off, b[30+off])
	}
	if off := nonZero(b[40:]); off >= 0 {
		return fmt.Errorf("hello: reserved byte %d is %#02x, want 0", 40+off, b[40+off])
	}
	switch {
	case !n.Reply && n.Status != StatusOK:
		return fmt.Errorf("hello: request with status %d", uint16(n.Status))
	case n.Status > maxStatus:
		return fmt.Errorf("hello: unknown status %d", uint16(n.Status))
	case n.Status != StatusOK:
		// A refusal says why and nothing else.
		if n.Session != ([16]byte{}) || n.Index != 0 || n.Channels != 0 || n.Caps != 0 {
			return fmt.Errorf("hello: refusal (%s) with a session, index, channel count or capabilities", n.Status)
		}
	case n.Channels < 1 || n.Channels > MaxChannels:
		return fmt.Errorf("hello: channel count %d out of range 1..%d", n.Channels, MaxChannels)
	case n.Index >= n.Channels:
		return fmt.Errorf("hello: index %d not below channel count %d", n.Index, n.Channels)
	case (n.Role == RoleMain) != (n.Index == 0):
		return fmt.Errorf("hello: %s channel with index %d", n.Role, n.Index)
	}
	*h = n
	return nil
}

// Answerable reports whether b, whatever else it breaks, is a request of
// this protocol and version that expects a reply: the magic, Version, the
// request kind and no one-way flag. The accepting side answers such a
// request with a refusal when it does not decode or fit; anything else
// (another protocol or version, a reply, a one-way request) gets no answer.
func Answerable(b []byte) bool {
	return len(b) == Size && binary.BigEndian.Uint32(b) == Magic && b[4] == Version &&
		b[5] == kindRequest && b[7]&flagOneWay == 0
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
