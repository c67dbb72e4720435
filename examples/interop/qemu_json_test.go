package interop

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/uri"
)

// TestQEMUTakesLivemigJSON: livemig prints an Address as QEMU's channels
// JSON, and a QEMU destination (8.2 or later) takes it in migrate-incoming
// as is. The address is an abstract unix socket with tight=false, which
// only works if QEMU and livemig pad the socket address alike: QEMU
// listens on the padded address (a tight dial of the same name is
// refused), and migrate-proxy, given the same JSON, sends a saved QEMU
// stream into it. QEMU loads it and its RAM equals the saved guest's.
func TestQEMUTakesLivemigJSON(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		if !q.AtLeast(8, 2) {
			t.Skipf("%s has no channels argument (QEMU 8.2 added it)", q)
		}
		const size = 32 << 20
		src := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: size})
		state := filepath.Join(t.TempDir(), "vm.state")
		src.SaveStream(t, state)

		name := "livemig-qemu-json-" + strconv.Itoa(os.Getpid())
		a, err := uri.Parse(`{"channel-type":"main","addr":{"transport":"socket","type":"unix","path":"` + name + `","abstract":true,"tight":false}}`)
		if err != nil {
			t.Fatal(err)
		}
		dst := qemutest.Start(t, qemutest.Options{QEMU: q, Incoming: true, MemSize: size})
		ctx := testwait.Context(t)
		if _, err := dst.QMP.Execute(ctx, "migrate-incoming", map[string]any{
			"channels": []json.RawMessage{json.RawMessage(a.JSON())},
		}); err != nil {
			t.Fatalf("migrate-incoming with channels %s: %v", a.JSON(), err)
		}
		// QEMU listens on the padded address, not on the tight one.
		if s, err := channel.Dial(ctx, "unix", "@"+name); !errors.Is(err, syscall.ECONNREFUSED) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("tight dial of QEMU's tight=false socket: %v, want ECONNREFUSED", err)
		}

		px := start(t, "migrate-proxy", "--raw", "--listen", "file:"+state, "--to", a.String())
		if code := px.wait(t); code != 0 { // it ends once the file is sent
			t.Fatalf("migrate-proxy exit %d:\n%s\nQEMU: %s", code, px.Stderr(), dst.Log())
		}
		info, err := dst.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if err != nil {
			t.Fatalf("destination: %v\nQEMU: %s\nproxy: %s", err, dst.Log(), px.Stderr())
		}
		checkSameRAM(t, dst, src)
		t.Logf("QEMU took %s and loaded the stream from livemig: %s", a.JSON(), info.Status)
	})
}
