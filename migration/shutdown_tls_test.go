package migration

import (
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/livemig/livemig/internal/testwait"
)

// TestShutdownBlockedTLS: Shutdown from another goroutine ends a Flush
// blocked on a TLS channel whose peer does not read, and a Read blocked on
// a silent peer, for each kind of credentials.
func TestShutdownBlockedTLS(t *testing.T) {
	for _, kind := range []string{"", "x509", "psk"} {
		t.Run("tls="+kind, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, kind)
			src, dst := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "s"), srcCfg, dstCfg)
			write := testwait.Go(func() error {
				page := make([]byte, 4096)
				for src.Err() == nil {
					src.PutBufferNoCopy(page)
				}
				return src.Err()
			})
			write.Blocked(t)       // the socket buffers are full
			rp := src.ReturnPath() // the destination never writes it
			read := testwait.Go(func() error { rp.GetByte(); return rp.Err() })
			read.Blocked(t)
			shut := testwait.Go(func() bool { src.Shutdown(); dst.Shutdown(); return true })
			for _, c := range []*testwait.Call[error]{write, read} {
				if err := c.Result(t, "a blocked write or read after Shutdown"); !errors.Is(err, net.ErrClosed) {
					t.Errorf("after Shutdown: %v, want an error wrapping net.ErrClosed", err)
				}
			}
			shut.Result(t, "Shutdown")
		})
	}
}
