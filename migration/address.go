package migration

import "errors"

// errZeroAddress is the error of Listen, Connect, Dial and DialSession
// given the zero uri.Address, which names no endpoint.
var errZeroAddress = errors.New("migration: no address: the zero uri.Address names no endpoint")
