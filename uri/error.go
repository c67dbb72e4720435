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
//
// For JSON input it also names the JSON path of the value at fault:
//
//	uri: parse "[{\"channel-type\":\"main\",\"addr\":{\"transport\":\"rdma\",\"host\":\"h\",\"port\":\"1\"}}]": at offset 44: channels[0].addr.transport: rdma is not supported by livemig: expected socket, exec or file
type Error struct {
	// Input is the string given to Parse, in full.
	Input string

	// Offset is the byte offset in Input where the problem starts. It is
	// len(Input) when something is missing at the end.
	Offset int

	// Path names the JSON value at fault, such as
	// "channels[0].addr.port" (for a list of channels) or
	// "channel.addr.port" (for one channel object); "" for URI input and
	// for JSON syntax errors, which only an offset can place.
	Path string

	// Reason says what is wrong and what was expected, without the input.
	Reason string

	// Err is the underlying cause, or nil. A number out of range wraps
	// strconv.ErrRange, so errors.Is(err, strconv.ErrRange) finds it.
	Err error
}

// Error returns the message described in the type's documentation.
func (e *Error) Error() string {
	in, cut := e.Input, ""
	if len(in) > maxQuoted {
		in, cut = in[:maxQuoted], "..."
	}
	reason := e.Reason
	if e.Path != "" {
		reason = e.Path + ": " + reason
	}
	return "uri: parse " + strconv.Quote(in) + cut + ": at offset " +
		strconv.Itoa(e.Offset) + ": " + reason
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
