package migration

import (
	"net"
	"strconv"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
)

// peerIdentity returns who is at the other end of a channel, as a Server
// binds sessions and counts quotas: after a TLS handshake that showed a
// certificate, "x509:" and its subject DN; after a DTLS handshake with a
// PSK username, "psk:" and the username; otherwise (no TLS, anon TLS, or
// a client without a certificate) the peer's host, as peerHost gives it.
// ch is the channel after the handshake, raw the transport under it.
func peerIdentity(ch, raw channel.Channel, sec *tlsSetup) string {
	if sec != nil {
		if pi, ok := ch.(interface{ PeerIdentity() string }); ok {
			if id := pi.PeerIdentity(); id != "" {
				if sec.creds.Kind() == crypto.PSK {
					return "psk:" + id
				}
				return "x509:" + id
			}
		}
	}
	return peerHost(raw)
}

// peerHost returns the host a transport connects to, without the port:
// "tcp:IP" for tcp (so the channels of one source share it whatever their
// ports), "vsock:CID" for vsock, "unix" for a unix socket (every local
// peer is one host) and "local" for channels that are not sockets.
func peerHost(raw channel.Channel) string {
	s, ok := raw.(*channel.Socket)
	if !ok {
		return "local"
	}
	switch a := s.RemoteAddr().(type) {
	case *net.TCPAddr:
		return "tcp:" + a.IP.String()
	case *channel.VsockAddr:
		return "vsock:" + strconv.FormatUint(uint64(a.CID), 10)
	}
	return s.Network()
}

// PeerIdentity returns who the Stream's peer is, as a [Server] binds
// sessions to it: "x509:" and the subject DN of the certificate the peer
// showed in the TLS handshake, "psk:" and its PSK username, or, without
// an authenticated identity (no TLS, anon credentials, a client without
// a certificate), its host: "tcp:" and its IP address, "vsock:" and its
// CID, "unix" for a unix socket, or "local" for exec, fd and file. It is
// "" for a Stream made by NewStream.
func (s *Stream) PeerIdentity() string { return s.who }
