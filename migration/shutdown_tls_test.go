package migration

import (
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestShutdownBlockedTLS: Shutdown from another goroutine ends a Flush
// blocked on a TLS channel whose peer does not read, and a Read blocked on
// a silent peer, for each kind of credentials.
func TestShutdownBlockedTLS(t *testing.T) {
	for _, kind := range []string{"", "x509", "psk"} {
		t.Run("tls="+kind, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, kind)
			src, dst := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "s"), srcCfg, dstCfg)
			done := make(chan error, 1)
			go func() {
				page := make([]byte, 4096)
				for src.Err() == nil {
					src.PutBufferNoCopy(page)
				}
				done <- src.Err()
			}()
			time.Sleep(200 * time.Millisecond) // the socket buffers fill up
			rdone := make(chan error, 1)
			rp := src.ReturnPath() // the destination never writes it
			go func() { rp.GetByte(); rdone <- rp.Err() }()
			start := time.Now()
			sd := make(chan struct{})
			go func() { src.Shutdown(); dst.Shutdown(); close(sd) }()
			for _, c := range []chan error{done, rdone} {
				select {
				case err := <-c:
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("after Shutdown: %v, want an error wrapping net.ErrClosed", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Shutdown did not unblock")
				}
			}
			select {
			case <-sd:
			case <-time.After(5 * time.Second):
				t.Fatal("Shutdown itself blocked")
			}
			t.Logf("unblocked after %v", time.Since(start))
		})
	}
}
