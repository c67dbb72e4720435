package demovm

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/examples/internal/cli"
)

// TestSourceValidate: each numeric flag of migrate-source out of range is
// refused with a line naming it, before anything starts (finding 10: the
// demo passes them on, and a source that fails on one leaves its
// destination waiting).
func TestSourceValidate(t *testing.T) {
	good := SourceOptions{RAMSize: 1 << 20, Channels: 1, DirtyRate: 0, DowntimeLimit: time.Millisecond}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", good, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*SourceOptions)
		want string
	}{
		{"ram-size 0", func(o *SourceOptions) { o.RAMSize = 0 }, "--ram-size 0 bytes: want a multiple of 4096 bytes"},
		{"ram-size not in pages", func(o *SourceOptions) { o.RAMSize = 1000 }, "--ram-size 1000 bytes: want a multiple of 4096 bytes"},
		{"ram-size too large", func(o *SourceOptions) { o.RAMSize = MaxRAMSize + PageSize }, "--ram-size 68719480832 bytes: want a multiple of 4096 bytes from 4096 bytes to 64.0 GiB"},
		{"channels 0", func(o *SourceOptions) { o.Channels = 0 }, "--channels 0: want 1..64"},
		{"channels 65", func(o *SourceOptions) { o.Channels = 65 }, "--channels 65: want 1..64"},
		{"dirty-rate -1", func(o *SourceOptions) { o.DirtyRate = -1 }, "--dirty-rate -1: want 0 or more"},
		{"max-bandwidth -1", func(o *SourceOptions) { o.MaxBandwidth = -1 }, "--max-bandwidth -1: want 0 (unlimited) or more"},
		{"downtime-limit 0", func(o *SourceOptions) { o.DowntimeLimit = 0 }, "--downtime-limit 0s: want a positive duration"},
		{"downtime-limit -1ms", func(o *SourceOptions) { o.DowntimeLimit = -time.Millisecond }, "--downtime-limit -1ms: want a positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			if err := o.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q...", err, tc.want)
			}
		})
	}
}

// TestSourceMainRAMSizeFirst: migrate-source checks --ram-size with its
// other flags, before it loads credentials, in one line.
func TestSourceMainRAMSizeFirst(t *testing.T) {
	var stdout, stderr strings.Builder
	code := SourceMain([]string{"--to", "unix:" + filepath.Join(t.TempDir(), "none"), "--ram-size", "1000",
		"--object", "tls-creds-x509,id=tls0,endpoint=client,dir=" + filepath.Join(t.TempDir(), "no-such-dir")}, &stdout, &stderr)
	want := "migrate-source: --ram-size 1000 bytes: want a multiple of 4096 bytes from 4096 bytes to 64.0 GiB\n"
	if code != 1 || stderr.String() != want {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), want)
	}
}

// TestDestRefusesImpossibleRAMSize: migrate-dest with a --ram-size no VM
// can have fails before it listens; it used to listen and wait for a
// source only to refuse its RAM size. Should it listen, the test cancels
// it there rather than wait.
func TestDestRefusesImpossibleRAMSize(t *testing.T) {
	for _, size := range []cli.Size{1000, MaxRAMSize + PageSize} {
		ctx, cancel := context.WithCancel(context.Background())
		listened := ""
		o := &DestOptions{Incoming: "unix:" + filepath.Join(t.TempDir(), "d.sock"), RAMSize: size,
			Listening: func(addr string) { listened = addr; cancel() }}
		_, err := RunDest(ctx, o, &strings.Builder{})
		cancel()
		if listened != "" {
			t.Errorf("--ram-size %d: listened on %s (then %v)", int64(size), listened, err)
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), "--ram-size ") {
			t.Errorf("--ram-size %d: %v, want an error naming --ram-size", int64(size), err)
		}
	}
	if err := (&DestOptions{RAMSize: 0}).Validate(); err != nil {
		t.Errorf("--ram-size 0 (the source's): %v", err)
	}
}
