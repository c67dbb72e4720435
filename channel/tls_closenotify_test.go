package channel_test

import (
	"errors"
	"io"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// TestTLSCloseNotifyReceived: CloseNotifyReceived tells a peer that ended
// with close_notify from one whose stream just stopped at a record
// boundary, which a Raw reader reads as the same io.EOF (QEMU 10.0 ends
// its multifd channels with close_notify, its main channel without).
func TestTLSCloseNotifyReceived(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	for _, tc := range []struct {
		name   string
		raw    bool
		notify bool // the client ends with close_notify, else by shutting its socket
		want   bool
		eof    bool // Read ends with a clean io.EOF
	}{
		{"close_notify", false, true, true, true},
		{"close_notify raw", true, true, true, true},
		// QEMU's main channel, and every channel of QEMU before 10.0.
		{"boundary raw", true, false, false, true},
		// Without Raw such an end is a truncation.
		{"boundary", false, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testwait.Context(t)
			ci, si := secSocketPair(t, "tcp")
			c := channel.NewTLS(ci, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
			s := channel.NewTLS(si, sc, &channel.TLSOptions{Raw: tc.raw})
			t.Cleanup(func() { c.Close(); s.Close() })
			hs := testwait.Go(func() error { return s.Handshake(ctx) })
			if err := c.Handshake(ctx); err != nil {
				t.Fatal(err)
			}
			if err := hs.Result(t, "server handshake"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("the stream")); err != nil {
				t.Fatal(err)
			}
			if s.CloseNotifyReceived() {
				t.Fatal("CloseNotifyReceived before the end")
			}
			var err error
			if tc.notify {
				err = c.Shutdown(channel.Write)
			} else {
				err = ci.Shutdown(channel.Write) // beneath TLS: no close_notify
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(s)
			if string(got) != "the stream" {
				t.Errorf("read %q", got)
			}
			if (err == nil) != tc.eof || (!tc.eof && !errors.Is(err, io.ErrUnexpectedEOF)) {
				t.Errorf("end of the stream: %v, want a clean EOF: %v", err, tc.eof)
			}
			if s.CloseNotifyReceived() != tc.want {
				t.Errorf("CloseNotifyReceived = %v, want %v", !tc.want, tc.want)
			}
		})
	}
}
