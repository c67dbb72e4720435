package uri

import (
	"fmt"
	"strconv"
)

// maxQuoted is how many bytes of the input an error message quotes; the
// rest is cut and marked with "...". Error.Input always holds all of it.
const maxQuoted = 256

// Error reports a malformed migration URI. Parse returns every failure as
// an *Error.
//
// Its message quotes the input, names the byte offset where the problem
// starts and says what was expected there:
//
//	uri: parse "tcp:example.com": at offset 15: missing port: expected HOST:PORT
type Error struct {
	// Input is the string given to Parse, in full.
	Input string

	// Offset is the byte offset in Input where the problem starts. It is
	// len(Input) when something is missing at the end.
	Offset int

	// Reason says what is wrong and what was expected, without the input.
	Reason string

	// Err is the underlying cause, or nil. A number out of range wraps
	// strconv.ErrRange, so errors.Is(err, strconv.ErrRange) finds it.
	Err error
}

// Error returns the message described in the type's documentation.
func (e *Error) Error() string {
	in := e.Input
	if len(in) > maxQuoted {
		in = in[:maxQuoted]
		return "uri: parse " + strconv.Quote(in) + "...: at offset " +
			strconv.Itoa(e.Offset) + ": " + e.Reason
	}
	return "uri: parse " + strconv.Quote(in) + ": at offset " +
		strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// fail returns an *Error for the input being parsed.
func (p *parser) fail(off int, format string, args ...any) *Error {
	return &Error{Input: p.in, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// failErr is fail with an underlying cause.
func (p *parser) failErr(off int, err error, format string, args ...any) *Error {
	e := p.fail(off, format, args...)
	e.Err = err
	return e
}
