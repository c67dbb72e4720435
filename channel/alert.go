package channel

import (
	"crypto/tls"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"
)

// AlertError is a fatal alert received from the TLS or DTLS peer (RFC 8446
// 6, RFC 6347 4.1): the peer's refusal, named by its code. TLS and DTLS
// wrap it in their [*OpError]; find it with errors.As. Its Err is the
// error crypto/tls or pion/dtls returned, so errors.Is sees the same
// causes as before.
//
// With TLS 1.3 a client finishes its handshake before the server has
// checked the client's certificate, so a server that refuses it (alert 42
// bad certificate, 48 unknown CA, 49 access denied) is heard by the client
// only when it next reads: Handshake succeeded, and the first Read fails
// with an AlertError whose BeforeData is true. That is a refused
// handshake, not a failure of the stream.
type AlertError struct {
	// Code is the alert description number, such as 42 for
	// bad_certificate or 48 for unknown_ca.
	Code uint8
	// InHandshake is true for an alert received while this side's
	// handshake ran: Handshake failed with it.
	InHandshake bool
	// BeforeData is true for an alert received after this side's
	// handshake completed but before any application data was read: the
	// peer refused the handshake after this side had finished it.
	BeforeData bool
	// Err is the error the TLS library returned.
	Err error
}

// Description returns the alert's name as crypto/tls prints it, such as
// "bad certificate" for code 42.
func (e *AlertError) Description() string {
	return strings.TrimPrefix(tls.AlertError(e.Code).Error(), "tls: ")
}

// Error says which alert arrived and when, for example "peer sent TLS
// alert 42 (bad certificate) before any data: it refused the handshake".
func (e *AlertError) Error() string {
	s := "peer sent TLS alert " + strconv.Itoa(int(e.Code)) + " (" + e.Description() + ")"
	switch {
	case e.InHandshake:
		s += " during the handshake"
	case e.BeforeData:
		s += " before any data: it refused the handshake"
	}
	return s
}

// Unwrap returns Err.
func (e *AlertError) Unwrap() error { return e.Err }

// tlsRemoteAlert returns the code of the alert crypto/tls reports
// receiving in err. crypto/tls returns a received alert as a
// *net.OpError "remote error" whose Err is its unexported alert type, a
// uint8; tls.AlertError, its exported twin, is only for alerts it sends.
// The code is read by reflection from that uint8, checked against
// tls.AlertError's text for the same code, rather than parsed out of the
// message.
func tlsRemoteAlert(err error) (uint8, bool) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(oe.Err)
	if v.Kind() != reflect.Uint8 || v.Type().PkgPath() != "crypto/tls" {
		return 0, false
	}
	code := uint8(v.Uint())
	if oe.Err.Error() != tls.AlertError(code).Error() {
		return 0, false
	}
	return code, true
}

// pionAlert is pion/dtls's unexported error for an alert received: it
// embeds *alert.Alert, whose Marshal gives the level and the code.
type pionAlert interface {
	error
	IsFatalOrCloseNotify() bool
	Marshal() ([]byte, error)
}

// dtlsRemoteAlert returns the code of the fatal alert pion/dtls reports
// receiving in err.
func dtlsRemoteAlert(err error) (uint8, bool) {
	var a pionAlert
	if !errors.As(err, &a) || !a.IsFatalOrCloseNotify() {
		return 0, false
	}
	b, merr := a.Marshal()
	if merr != nil || len(b) != 2 || b[1] == 0 { // 0 is close_notify
		return 0, false
	}
	return b[1], true
}
