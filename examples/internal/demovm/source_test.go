package demovm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// TestSourceMaxBandwidthIsTotal: --max-bandwidth is the rate over all
// channels, so with --channels 2 each channel of the real Session gets half
// of it (not a quarter: DialSession already divides Config.RateLimit by the
// channel count).
func TestSourceMaxBandwidthIsTotal(t *testing.T) {
	ctx := testwait.Context(t)
	srv, ln := unixServer(t, ctx)
	o := &SourceOptions{Channels: 2, MaxBandwidth: 100 << 20}
	src, err := migration.DialSession(ctx, ln.Addr(), sessionConfig(o, crypto.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := srv.AcceptSession(ctx)
	if err != nil {
		src.Shutdown()
		src.Close()
		t.Fatal(err)
	}
	total := src.RateLimit()
	src.Close()
	dst.Close()
	if total != int64(o.MaxBandwidth) {
		t.Fatalf("the channels' limits add up to %d B/s, want --max-bandwidth %d B/s", total, int64(o.MaxBandwidth))
	}
}

// TestSourceJSONOnMismatch: when the destination reports a different
// checksum, migrate-source --json still prints its summary as one JSON
// object (status MISMATCH), as migrate-dest does, and exits 1 with a
// one-line error.
func TestSourceJSONOnMismatch(t *testing.T) {
	ctx := testwait.Context(t)
	srv, ln := unixServer(t, ctx)
	// A destination that takes everything and then disagrees.
	destErr := make(chan error, 1)
	go func() {
		sess, err := srv.AcceptSession(ctx)
		if err != nil {
			destErr <- err
			return
		}
		defer sess.Close()
		dec := NewDecoder(sess)
		size, err := dec.ReadHeader(0)
		if err != nil {
			destErr <- err
			return
		}
		ram := make([]byte, size)
		rp := sess.ReturnPath()
		for {
			rec, err := dec.Next(ram)
			if err != nil {
				destErr <- err
				return
			}
			switch rec.Type {
			case RecEnd:
				rp.PutBE32(AckMagic)
				rp.PutByte(AckResumed)
				rp.Flush()
			case RecSum:
				rp.PutBE32(AckMagic)
				rp.PutByte(AckVerdict)
				rp.PutByte(0)
				rp.PutBuffer(make([]byte, 32))
				destErr <- rp.Flush()
				dec.Next(ram) // until the source closes
				return
			}
		}
	}()
	var stdout, stderr strings.Builder
	code := SourceMain([]string{"--to", ln.Addr().String(), "--ram-size", "1M", "--dirty-rate", "0", "--json"}, &stdout, &stderr)
	if err := <-destErr; err != nil {
		t.Fatalf("destination: %v", err)
	}
	var sum Summary
	if code != 1 || json.Unmarshal([]byte(stdout.String()), &sum) != nil || sum.ChecksumStatus != "MISMATCH" {
		t.Fatalf("exit %d, stdout %q; want 1 and one JSON summary with checksum_status MISMATCH", code, stdout.String())
	}
	if se := strings.TrimSpace(stderr.String()); !strings.Contains(se, "does not match") {
		t.Fatalf("stderr %q lacks the mismatch", se)
	}
}

// TestMainsWarnIgnoredPriority: an --object with priority= is accepted, and
// migrate-source and migrate-dest say on stderr, prefixed with their name,
// that it is ignored. Both then fail on an unusable address.
func TestMainsWarnIgnoredPriority(t *testing.T) {
	bad := "unix:" + filepath.Join(t.TempDir(), "no", "such", "dir", "mig.sock")
	obj := "tls-creds-anon,id=tls0,endpoint=%s,priority=NORMAL:+ANON-DH"
	for _, tc := range []struct {
		name string
		main func([]string, io.Writer, io.Writer) int
		args []string
	}{
		{"migrate-dest", DestMain, []string{"--incoming", bad, "--object", fmt.Sprintf(obj, "server")}},
		{"migrate-source", SourceMain, []string{"--to", bad + ",tls-creds=tls0", "--object", fmt.Sprintf(obj, "client")}},
	} {
		var stdout, stderr strings.Builder
		main := testwait.Go(func() int { return tc.main(tc.args, &stdout, &stderr) })
		if code := main.Result(t, tc.name+" giving up on "+bad); code == 0 {
			t.Errorf("%s exited 0 on %s", tc.name, bad)
		}
		want := tc.name + `: crypto: tls-creds tls0: priority="NORMAL:+ANON-DH" is ignored: crypto/tls chooses its own cipher suites` + "\n"
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("%s stderr %q lacks %q", tc.name, stderr.String(), want)
		}
	}
}

// unixServer listens on a unix socket in a temp dir and groups what it
// accepts into sessions; the Server closes when the test ends.
func unixServer(t testing.TB, ctx context.Context) (*migration.Server, *migration.Listener) {
	t.Helper()
	addr, err := uri.Parse("unix:" + filepath.Join(t.TempDir(), "mig.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := migration.Listen(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := migration.NewServer(ln)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, ln
}
