package qmp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testwait"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestDecodeMessage(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		check    func(*Message) bool
		wantErr  string
	}{
		// QEMU 7.2's greeting, verbatim.
		{name: "greeting", in: `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}`,
			check: func(m *Message) bool { return m.Greeting != nil && m.Greeting.Major == 7 && m.Greeting.Minor == 2 }},
		{name: "return", in: `{"return": {}, "id": "1"}`, check: func(m *Message) bool { return string(m.Return) == "{}" && string(m.ID) == `"1"` }},
		// qmp_dispatch's error shape (qapi/qmp-dispatch.c).
		{name: "error", in: `{"id": "2", "error": {"class": "GenericError", "desc": "boom"}}`,
			check: func(m *Message) bool { return m.Error != nil && m.Error.Desc == "boom" }},
		{name: "event", in: `{"timestamp": {"seconds": 1795305608, "microseconds": 9549}, "event": "SHUTDOWN", "data": {"guest": false}}`,
			check: func(m *Message) bool {
				return m.Event != nil && m.Event.Name == "SHUTDOWN" && m.Event.Timestamp.Unix() == 1795305608
			}},
		{name: "empty", in: ``, wantErr: "empty message"},
		{name: "not object", in: `[1]`, wantErr: "does not start with"},
		{name: "two kinds", in: `{"return": {}, "event": "X"}`, wantErr: "not exactly one"},
		{name: "no kind", in: `{"id": "1"}`, wantErr: "not exactly one"},
		{name: "trailing", in: `{"return": {}} {}`, wantErr: "trailing data"},
		{name: "truncated", in: `{"return": {`, wantErr: "decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMessage([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(m) {
				t.Fatalf("unexpected message %+v", m)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	// Seeds: each message kind, and the boundaries of the decoder.
	f.Add([]byte(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}`))
	f.Add([]byte(`{"return": {"status": "completed"}, "id": "7"}`))
	f.Add([]byte(`{"error": {"class": "GenericError", "desc": "x"}}`))
	f.Add([]byte(`{"event": "MIGRATION", "data": {"status": "active"}, "timestamp": {"seconds": -1, "microseconds": 99999999}}`))
	f.Add([]byte(`{"return": 1}{"return": 2}`)) // two objects on one line
	f.Add([]byte("\xff{"))                      // not JSON
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if m != nil {
				t.Fatal("message with error")
			}
			return
		}
		n := 0
		for _, set := range []bool{m.Greeting != nil, m.Return != nil, m.Error != nil, m.Event != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d kinds set", n)
		}
	})
}

// scripted serves one QMP connection on a real unix socket, writing lines
// in order after each line it reads (the greeting first, unprompted).
func scripted(t *testing.T, greeting string, replies ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(greeting + "\n"))
		r := bufio.NewReader(c)
		for _, rep := range replies {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			c.Write([]byte(rep + "\n"))
		}
		for { // hold the connection, unanswered, until the client closes
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	return path
}

const greeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}`

func TestClientErrors(t *testing.T) {
	ctx := testwait.Context(t)

	t.Run("event queued, error reply", func(t *testing.T) {
		path := scripted(t, greeting, `{"return": {}, "id": "1"}`,
			`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}`+"\n"+`{"error": {"class": "GenericError", "desc": "nope"}, "id": "2"}`)
		c, err := Dial(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Execute(ctx, "cont", nil)
		var qe *Error
		if !errors.As(err, &qe) || qe.Desc != "nope" || qe.Command != "cont" {
			t.Fatalf("err = %v, want *Error nope", err)
		}
		if ev := c.Events(); len(ev) != 1 || ev[0].Name != "STOP" {
			t.Fatalf("events = %+v", ev)
		}
	})
	t.Run("wrong id", func(t *testing.T) {
		path := scripted(t, greeting, `{"return": {}, "id": "9"}`)
		_, err := Dial(ctx, path)
		if err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no greeting", func(t *testing.T) {
		path := scripted(t, `{"return": {}}`)
		_, err := Dial(ctx, path)
		if err == nil || !strings.Contains(err.Error(), "not a greeting") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("line too long", func(t *testing.T) {
		path := scripted(t, `{"QMP": "`+strings.Repeat("a", MaxLineSize+10)+`"}`)
		_, err := Dial(ctx, path)
		if err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("silent peer, deadline", func(t *testing.T) {
		path := scripted(t, greeting) // never answers qmp_capabilities
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		// A Dial that ignored its deadline would fail at the test
		// binary's -timeout.
		dial := testwait.Go(func() error { _, err := Dial(short, path); return err })
		if err := dial.Result(t, "Dial past its deadline"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
}

// TestLateReplySkipped: a call abandoned at its context's end leaves its
// reply on the wire; the next call skips it instead of failing on the id
// (and the abandoned call's deadline does not leak into it).
func TestLateReplySkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		c.Write([]byte(greeting + "\n"))
		r.ReadString('\n')
		c.Write([]byte(`{"return": {}, "id": "1"}` + "\n"))
		r.ReadString('\n') // request 2: answered only after request 3
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		c.Write([]byte(`{"return": {"late": 2}, "id": "2"}` + "\n" + `{"return": {"x": 3}, "id": "3"}` + "\n"))
		r.ReadString('\n')
	}()
	ctx := testwait.Context(t)
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := c.Execute(short, "query-status", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned call: %v, want deadline exceeded", err)
	}
	ret, err := c.Execute(ctx, "query-migrate", nil)
	if err != nil || string(ret) != `{"x": 3}` {
		t.Fatalf("next call = %s, %v; want its own reply", ret, err)
	}
}
