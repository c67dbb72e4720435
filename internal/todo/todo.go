// Package todo marks API stubs that are not implemented yet. It is removed
// once every package is complete.
package todo

import "errors"

// Err returns an error saying what is not implemented.
func Err(what string) error { return errors.New(what + ": not implemented yet") }
