package migration

import (
	"errors"
	"io"
	"syscall"
	"testing"
)

// TestAbortResets: a source sends some bytes and aborts its Stream. Over
// tcp, plain and under TLS in raw mode (where a clean end at a record
// boundary without close_notify is an EOF), the destination reads the
// bytes and then ECONNRESET, never the end of the stream. Close and Abort
// after Abort return nil.
func TestAbortResets(t *testing.T) {
	for _, kind := range []string{"", "x509"} {
		name := kind
		if name == "" {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, kind)
			srcCfg.Raw, dstCfg.Raw = true, true
			src, dst := connectPair(t, "tcp:127.0.0.1:0", srcCfg, dstCfg)
			msg := []byte("part of a migration stream")
			if _, err := src.Channel().Write(msg); err != nil {
				t.Fatal(err)
			}
			if err := src.Abort(); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			if err := src.Abort(); err != nil {
				t.Fatalf("second Abort: %v", err)
			}
			if err := src.Close(); err != nil {
				t.Fatalf("Close after Abort: %v", err)
			}
			if !errors.Is(src.Err(), ErrStreamShutdown) {
				t.Fatalf("sticky error after Abort: %v", src.Err())
			}
			got, err := io.ReadAll(readerOnly{dst.Channel()})
			if string(got) != string(msg) {
				t.Fatalf("destination read %q before the end, want %q", got, msg)
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("destination read %v after the data, want ECONNRESET (a cut, not an end)", err)
			}
		})
	}
}

type readerOnly struct{ io.Reader }
