package migration

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/livemig/livemig/internal/hello"
)

// fuzzPeers are the identities FuzzPlace's hellos come from; the first
// byte of each hello record picks one.
var fuzzPeers = []string{"x509:CN=a", "x509:CN=b", "psk:c", "tcp:192.0.2.1"}

// validRequest is FuzzPlace's oracle, written from the package
// documentation's layout and not from UnmarshalBinary: whether b is a
// request a destination may place.
func validRequest(b []byte) bool {
	if len(b) != hello.Size || string(b[:4]) != "LMIG" || b[4] != 1 || b[5] != 1 {
		return false
	}
	role, flags := b[6], b[7]
	index, count := binary.BigEndian.Uint16(b[24:]), binary.BigEndian.Uint16(b[26:])
	return role <= 1 && flags&^3 == 0 && flags&1 == 1 && // main or multifd (issue 12), from a source
		bytes.Equal(b[28:32], make([]byte, 4)) && // status, reserved
		bytes.Equal(b[40:], make([]byte, 24)) && // reserved
		count >= 1 && count <= 256 && index < count && (role == 0) == (index == 0)
}

// answerable reports whether b is enough of a request that its refusal
// must be answered: our magic, version and kind, and a reply expected.
func answerable(b []byte) bool {
	return len(b) == hello.Size && string(b[:4]) == "LMIG" && b[4] == 1 && b[5] == 1 && b[7]&2 == 0
}

// FuzzPlace drives the accepting side of the hello, answerHello, with
// arbitrary hellos from a few identities against a Server's placement and
// a dial-back source's. Issue 11: a request with a status and a count of 0
// crashed Server.place, and an index past the count crashed the dial-back
// source. It checks that nothing panics, that every hello the oracle
// calls bad is refused (with a refusal status whenever it is answered),
// that every answer decodes, that a dial-back source never places two
// channels on one index nor channels of two identities, and that
// afterwards the Server still accepts a good session from another peer.
func FuzzPlace(f *testing.F) {
	req := func(who byte, mut func(h *hello.Hello)) []byte {
		h := hello.Hello{Version: hello.Version, Role: hello.RoleMain, Source: true, Session: SessionID{1}, Channels: 3}
		if mut != nil {
			mut(&h)
		}
		b, _ := h.AppendBinary([]byte{who})
		return b
	}
	crash := req(0, func(h *hello.Hello) { h.Status, h.Channels = hello.StatusUnknownSession, 0 })
	f.Add(crash)                                                                                           // issue 11: status 1, count 0
	f.Add(req(0, func(h *hello.Hello) { h.Role, h.Index, h.Channels = hello.RoleMultifd, 5, 3 }))          // index past count
	f.Add(req(1, func(h *hello.Hello) { h.Role, h.Index = hello.RoleMultifd, 1 }))                         // a channel of no session
	f.Add(append(req(0, nil), req(1, func(h *hello.Hello) { h.Role, h.Index = hello.RoleMultifd, 1 })...)) // another identity joins
	f.Add(append(req(0, nil), req(0, func(h *hello.Hello) { h.Role, h.Index = hello.RoleMultifd, 1 })...)) // the same identity joins
	f.Add(append(req(2, nil), req(2, func(h *hello.Hello) { h.Session = SessionID{2} })...))               // two sessions
	f.Add(req(3, func(h *hello.Hello) { h.OneWay = true }))                                                // one-way
	f.Add(req(3, func(h *hello.Hello) { h.Reply = true }))                                                 // a reply
	f.Add(req(3, func(h *hello.Hello) { h.Source = false }))                                               // from a destination
	f.Add(req(0, func(h *hello.Hello) { h.Channels = 257 }))                                               // too many channels
	f.Add(append([]byte{0}, bytes.Repeat([]byte{0xff}, hello.Size)...))                                    // every bit set
	f.Add(append([]byte{0}, []byte("QEVM\x00\x00\x00\x03")...))                                            // short, not ours
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fuzzed peers can fill their quotas but not the total, so
		// the good peer below must find room.
		const perPeer = 2
		srv := newServer((&Config{SessionTimeout: 1 << 40, MaxPendingPerPeer: perPeer, MaxPendingSessions: len(fuzzPeers)*perPeer + 1}).populate())
		defer func() {
			srv.cancel()
			for _, p := range srv.pending {
				p.timer.Stop()
			}
		}()
		dbp := newDialBackPlacer(SessionID{1}, 3)
		var dbWho [3]string
		local := hello.Hello{Version: hello.Version, Role: hello.RoleMain}
		for len(data) > 0 {
			who := fuzzPeers[int(data[0])%len(fuzzPeers)]
			b := data[1:min(len(data), 1+hello.Size)]
			data = data[len(b)+1:]
			for name, place := range map[string]placeFunc{"server": srv.place, "dial-back": dbp.place} {
				peer, reply, err := answerHello(&local, b, who, place)
				if peer == nil && err == nil {
					t.Fatalf("%s: neither accepted nor refused %x", name, b)
				}
				if peer != nil && err != nil {
					t.Fatalf("%s: accepted with error %v", name, err)
				}
				if !validRequest(b) && peer != nil {
					t.Fatalf("%s: accepted a bad hello %x", name, b)
				}
				if peer == nil && answerable(b) && reply == nil {
					t.Fatalf("%s: refused %x without an answer (%v)", name, b, err)
				}
				if reply != nil {
					enc, _ := reply.MarshalBinary()
					var back hello.Hello
					if derr := back.UnmarshalBinary(enc); derr != nil {
						t.Fatalf("%s: answer does not decode: %v", name, derr)
					}
					if (peer != nil) != (back.Status == hello.StatusOK) {
						t.Fatalf("%s: status %s for accepted=%v", name, back.Status, peer != nil)
					}
				}
				if name == "dial-back" && peer != nil {
					i := int(peer.Index)
					if dbWho[i] != "" {
						t.Fatalf("dial-back: channel %d placed twice", i)
					}
					for _, w := range dbWho {
						if w != "" && w != who {
							t.Fatalf("dial-back: channels from %s and %s", w, who)
						}
					}
					dbWho[i] = who
				}
			}
		}
		// A good session from a peer that sent none of the above.
		id := SessionID{0xaa}
		for srv.pending[id] != nil || !srv.expired[id].IsZero() {
			id[1]++
		}
		good := func(role hello.Role, index uint16) {
			h := hello.Hello{Version: hello.Version, Role: role, Source: true, Session: id, Index: index, Channels: 2}
			b, _ := h.MarshalBinary()
			if _, reply, err := answerHello(&local, b, "x509:CN=good", srv.place); err != nil || reply.Status != hello.StatusOK {
				t.Fatalf("good session's %s channel refused after the fuzzed hellos: %v", role, err)
			}
		}
		good(hello.RoleMain, 0)
		good(hello.RoleMultifd, 1)
	})
}
