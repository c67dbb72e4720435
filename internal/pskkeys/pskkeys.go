// Package pskkeys is the one door through which livemig's channel package
// reads the PSK keys of a crypto.Creds for DTLS, so that the crypto
// package needs no exported method that hands key material to anyone
// holding credentials. crypto registers the lookup at init; only packages
// of this module can import this one.
package pskkeys

import "errors"

var lookup func(creds any, identity string) ([]byte, error)

// Set registers the lookup; crypto calls it once, from init.
func Set(f func(creds any, identity string) ([]byte, error)) { lookup = f }

// Key returns a copy of the key of identity in creds, a *crypto.Creds
// with PSK credentials. A client's creds know only its own username.
func Key(creds any, identity string) ([]byte, error) {
	if lookup == nil {
		return nil, errors.New("pskkeys: crypto is not linked in")
	}
	return lookup(creds, identity)
}
