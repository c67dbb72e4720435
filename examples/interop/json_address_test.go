package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/uri"
)

// TestBinariesTakeJSONAddresses runs migrate-source -> migrate-proxy ->
// migrate-dest with every address given as QEMU's channels JSON, the TLS
// options riding along as livemig's channel keys: migrate-dest listens on
// a padded abstract unix socket (tight=false) with TLS, announces it in
// JSON (no URI can say tight=false), the proxy reaches it with the same
// padding and TLS, and the source reaches the proxy through a one-channel
// list, as QMP's channels argument is written. Both ends verify the RAM.
func TestBinariesTakeJSONAddresses(t *testing.T) {
	pk := testpki.New(t, nil)
	name := "livemig-interop-" + strconv.Itoa(os.Getpid())
	padded := map[string]any{"transport": "socket", "type": "unix", "path": name, "abstract": true, "tight": false}
	incoming := jsonText(t, map[string]any{"channel-type": "main", "addr": padded, "tls-creds": "tls0"})
	dest := start(t, "migrate-dest", "--incoming", incoming, "--json",
		"--object", "tls-creds-x509,id=tls0,dir="+pk.ServerDir+",endpoint=server,verify-peer=on")
	announced := dest.listening(t)
	want, err := uri.Parse(incoming)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := uri.Parse(announced); err != nil || got != want || announced != want.JSON() {
		t.Fatalf("migrate-dest announced %q (%v), want %s", announced, err, want.JSON())
	}

	sock := filepath.Join(t.TempDir(), "p.sock")
	px := start(t, "migrate-proxy",
		"--listen", jsonText(t, []any{map[string]any{"channel-type": "main",
			"addr": map[string]any{"transport": "socket", "type": "unix", "path": sock}}}),
		"--to", jsonText(t, map[string]any{"channel-type": "main", "addr": padded,
			"tls-creds": "tls0", "tls-hostname": "localhost"}),
		"--object", "tls-creds-x509,id=tls0,dir="+pk.ClientDir+",endpoint=client")
	px.listening(t)
	src := start(t, "migrate-source", "--json", "--ram-size", "16M", "--channels", "1",
		"--to", jsonText(t, []any{map[string]any{"channel-type": "main",
			"addr": map[string]any{"transport": "socket", "type": "unix", "path": sock}}}))
	verifiedRun(t, src, dest)
}

// TestBinariesRefuseBadJSON: a JSON address livemig does not carry ends
// the binary with one line naming the JSON value.
func TestBinariesRefuseBadJSON(t *testing.T) {
	p := start(t, "migrate-source", "--to", `[{"channel-type":"main","addr":{"transport":"rdma","host":"h","port":"1"}}]`)
	if code := p.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, p.Stderr())
	}
	if want := "channels[0].addr.transport: rdma is not supported by livemig"; !strings.Contains(p.Stderr(), want) {
		t.Fatalf("stderr %q lacks %q", p.Stderr(), want)
	}
}

func jsonText(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
