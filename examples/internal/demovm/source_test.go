package demovm

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// TestSourceMaxBandwidthIsTotal: --max-bandwidth is the rate over all
// channels, so with --channels 2 each channel of the real Session gets half
// of it (not a quarter: DialSession already divides Config.RateLimit by the
// channel count).
func TestSourceMaxBandwidthIsTotal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
		t.Fatal(err)
	}
	defer srv.Close()
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
	var total int64
	for i := range src.Channels() {
		total += src.Stream(i).RateLimit()
	}
	src.Close()
	dst.Close()
	if total != int64(o.MaxBandwidth) {
		t.Fatalf("the channels' limits add up to %d B/s, want --max-bandwidth %d B/s", total, int64(o.MaxBandwidth))
	}
}
