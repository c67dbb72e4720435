// Package qmp is a small client for the QEMU Machine Protocol over a unix
// socket, enough to drive migrations from tests and examples: the greeting,
// qmp_capabilities, commands with a deadline, asynchronous events and
// query-migrate polling.
//
// Everything read from QEMU is bounded: a line longer than [MaxLineSize]
// is an error, and every call takes a context whose end unblocks it.
//
// # Concurrency
//
// A Client is not safe for concurrent use: one goroutine issues commands
// at a time. Close may be called from any goroutine and unblocks a pending
// call.
package qmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// MaxLineSize bounds one message from QEMU. QMP replies used by migration
// are a few KiB; query-* replies of a large machine stay far below this.
const MaxLineSize = 1 << 20

// maxEvents bounds the queue of events kept between calls; older events are
// dropped first.
const maxEvents = 1024

// Event is an asynchronous notification from QEMU, such as MIGRATION or STOP.
type Event struct {
	Name      string          // "event" member, e.g. "MIGRATION"
	Data      json.RawMessage // "data" member, nil if absent
	Timestamp time.Time       // "timestamp" member
}

// Error is a QMP error reply ({"error": {"class": ..., "desc": ...}}).
type Error struct {
	Command string // the command that failed
	Class   string // e.g. "GenericError"
	Desc    string // QEMU's human-readable description
}

// Error formats the reply with the command's name.
func (e *Error) Error() string {
	return fmt.Sprintf("qmp: %s: %s (%s)", e.Command, e.Desc, e.Class)
}

// Message is one decoded line from QEMU: exactly one of Greeting, Return,
// Error or Event is set.
type Message struct {
	Greeting *Greeting
	Return   json.RawMessage
	Error    *Error
	Event    *Event
	ID       json.RawMessage // the "id" echoed by QEMU, nil if absent
}

// Greeting is QEMU's first message on a QMP connection.
type Greeting struct {
	Major, Minor, Micro int
	Package             string
	Capabilities        []string
}

type wireMessage struct {
	QMP *struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
			Package string `json:"package"`
		} `json:"version"`
		Capabilities []string `json:"capabilities"`
	} `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event     *string         `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	ID json.RawMessage `json:"id"`
}

// DecodeMessage decodes one QMP line (without its newline). It is the
// network-facing decoder of this package: it rejects anything that is not
// a single JSON object of a known shape and never panics.
func DecodeMessage(line []byte) (*Message, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, errors.New("qmp: empty message")
	}
	if len(line) > MaxLineSize {
		return nil, fmt.Errorf("qmp: message of %d bytes exceeds the %d-byte limit", len(line), MaxLineSize)
	}
	if line[0] != '{' {
		return nil, fmt.Errorf("qmp: message does not start with '{' (%s)", quote(line))
	}
	var w wireMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("qmp: decoding %s: %w", quote(line), err)
	}
	if dec.More() {
		return nil, fmt.Errorf("qmp: trailing data after message %s", quote(line))
	}
	m := &Message{ID: w.ID}
	kinds := 0
	if w.QMP != nil {
		kinds++
		v := w.QMP.Version
		m.Greeting = &Greeting{Major: v.QEMU.Major, Minor: v.QEMU.Minor, Micro: v.QEMU.Micro,
			Package: v.Package, Capabilities: w.QMP.Capabilities}
	}
	if w.Return != nil {
		kinds++
		m.Return = w.Return
	}
	if w.Error != nil {
		kinds++
		m.Error = &Error{Class: w.Error.Class, Desc: w.Error.Desc}
	}
	if w.Event != nil {
		kinds++
		ev := &Event{Name: *w.Event, Data: w.Data}
		if ts := w.Timestamp; ts != nil && ts.Seconds >= 0 && ts.Microseconds >= 0 && ts.Microseconds < 1e6 {
			ev.Timestamp = time.Unix(ts.Seconds, ts.Microseconds*1000)
		}
		m.Event = ev
	}
	if kinds != 1 {
		return nil, fmt.Errorf("qmp: message %s is not exactly one of greeting, return, error, event", quote(line))
	}
	return m, nil
}

// quote shortens peer input for error messages.
func quote(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// Client is a QMP connection in command mode.
type Client struct {
	conn     net.Conn
	r        *bufio.Reader
	greeting Greeting
	events   []Event
	nextID   int
}

// Dial connects to the QMP unix socket at path, reads the greeting and
// negotiates capabilities. ctx bounds the whole exchange; it may be
// cancelled at any time.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if err := c.handshake(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) handshake(ctx context.Context) error {
	stop := c.watch(ctx)
	defer stop()
	m, err := c.readMessage()
	if err != nil {
		return c.ctxErr(ctx, fmt.Errorf("qmp: reading greeting: %w", err))
	}
	if m.Greeting == nil {
		return errors.New("qmp: first message is not a greeting")
	}
	c.greeting = *m.Greeting
	if _, err := c.executeLocked("qmp_capabilities", nil); err != nil {
		return c.ctxErr(ctx, err)
	}
	return nil
}

// Greeting returns QEMU's greeting (its version).
func (c *Client) Greeting() Greeting { return c.greeting }

// Close closes the connection; it unblocks a pending call.
func (c *Client) Close() error { return c.conn.Close() }

// watch makes ctx's end interrupt blocked I/O on the connection.
func (c *Client) watch(ctx context.Context) (stop func()) {
	// Only AfterFunc, not the ctx deadline itself: when the read fails,
	// ctx.Err() is already set, so the error names the context's end.
	c.conn.SetDeadline(time.Time{})
	fired := make(chan struct{})
	s := context.AfterFunc(ctx, func() {
		defer close(fired)
		c.conn.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !s() {
			// The deadline is being set: let it land now, so that it
			// cannot land after the next call's watch has cleared it.
			<-fired
		}
	}
}

func (c *Client) ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", err, cerr)
	}
	return err
}

// readMessage reads and decodes one line, bounded by MaxLineSize.
func (c *Client) readMessage() (*Message, error) {
	var line []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		if len(line)+len(frag) > MaxLineSize {
			return nil, fmt.Errorf("qmp: line exceeds %d bytes", MaxLineSize)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return nil, err
	}
	return DecodeMessage(line)
}

// Execute runs command with arguments (anything encoding/json accepts, or
// nil) and returns the "return" member. Events that arrive meanwhile are
// queued for [Client.Events]. A QMP error reply is an *Error.
func (c *Client) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	stop := c.watch(ctx)
	defer stop()
	ret, err := c.executeLocked(command, args)
	if err != nil {
		return nil, c.ctxErr(ctx, err)
	}
	return ret, nil
}

func (c *Client) executeLocked(command string, args any) (json.RawMessage, error) {
	c.nextID++
	id := strconv.Itoa(c.nextID)
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp: encoding %s: %w", command, err)
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp: sending %s: %w", command, err)
	}
	for {
		m, err := c.readMessage()
		if err != nil {
			return nil, fmt.Errorf("qmp: waiting for the reply to %s: %w", command, err)
		}
		switch {
		case m.Event != nil:
			c.queue(*m.Event)
			continue
		case m.Greeting != nil:
			return nil, fmt.Errorf("qmp: unexpected greeting in reply to %s", command)
		}
		if string(m.ID) != strconv.Quote(id) {
			if c.stale(m.ID) {
				continue // the reply to a call abandoned when its context ended
			}
			return nil, fmt.Errorf("qmp: reply id %s does not match request id %q for %s", quote(m.ID), id, command)
		}
		if m.Error != nil {
			m.Error.Command = command
			return nil, m.Error
		}
		return m.Return, nil
	}
}

// stale reports whether id is the id of an earlier request of this
// client, whose call ended (its context did) before the reply came.
func (c *Client) stale(id json.RawMessage) bool {
	var s string
	if json.Unmarshal(id, &s) != nil {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n < c.nextID
}

func (c *Client) queue(ev Event) {
	if len(c.events) >= maxEvents {
		c.events = c.events[1:]
	}
	c.events = append(c.events, ev)
}

// Events returns and clears the events received so far.
func (c *Client) Events() []Event {
	ev := c.events
	c.events = nil
	return ev
}

// WaitEvent returns the first queued or arriving event called name,
// discarding others, until ctx ends.
func (c *Client) WaitEvent(ctx context.Context, name string) (*Event, error) {
	for i, ev := range c.events {
		if ev.Name == name {
			c.events = c.events[i+1:]
			return &ev, nil
		}
	}
	c.events = nil
	stop := c.watch(ctx)
	defer stop()
	for {
		m, err := c.readMessage()
		if err != nil {
			return nil, c.ctxErr(ctx, fmt.Errorf("qmp: waiting for event %s: %w", name, err))
		}
		if m.Event != nil && m.Event.Name == name {
			return m.Event, nil
		}
	}
}
