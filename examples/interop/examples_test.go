package interop

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/examples/internal/demovm"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// wait waits for p to exit (until the test binary's -timeout nears) and
// returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	testwait.Recv(t, p.name+" exiting", p.done)
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
	return 0
}

// verifiedRun waits for migrate-source and migrate-dest, both run with
// --json, to exit 0, and returns their summaries after checking that both
// verified the same RAM checksum.
func verifiedRun(t *testing.T, src, dest *proc) (ss, ds demovm.Summary) {
	t.Helper()
	if code := src.wait(t); code != 0 {
		t.Fatalf("migrate-source exit %d:\n%s", code, src.Stderr())
	}
	if code := dest.wait(t); code != 0 {
		t.Fatalf("migrate-dest exit %d:\n%s", code, dest.Stderr())
	}
	if err := json.Unmarshal([]byte(src.Stdout()), &ss); err != nil {
		t.Fatalf("source summary %q: %v", src.Stdout(), err)
	}
	if err := json.Unmarshal([]byte(dest.Stdout()), &ds); err != nil {
		t.Fatalf("destination summary %q: %v", dest.Stdout(), err)
	}
	if ss.ChecksumStatus != "verified" || ds.ChecksumStatus != "verified" || ss.Checksum != ds.Checksum {
		t.Fatalf("summaries disagree: %+v %+v", ss, ds)
	}
	return ss, ds
}

// TestSourceThroughProxyToDest: migrate-source (2 channels, plain unix) ->
// migrate-proxy without --raw (the hello is repeated onwards, TLS added) ->
// migrate-dest (TLS). Both sides verify the RAM checksum.
func TestSourceThroughProxyToDest(t *testing.T) {
	pk := testpki.New(t, nil)
	dest := start(t, "migrate-dest", "--incoming", "tcp:127.0.0.1:0,tls-creds=tls0", "--json",
		"--object", "tls-creds-x509,id=tls0,dir="+pk.ServerDir+",endpoint=server,verify-peer=on")
	destAddr := dest.listening(t)
	sock := filepath.Join(t.TempDir(), "p.sock")
	px := start(t, "migrate-proxy", "--listen", "unix:"+sock, "--to", destAddr,
		"--object", "tls-creds-x509,id=tls0,dir="+pk.ClientDir+",endpoint=client")
	px.listening(t)
	src := start(t, "migrate-source", "--to", "unix:"+sock, "--channels", "2", "--ram-size", "64M", "--dirty-rate", "30000", "--json")
	ss, ds := verifiedRun(t, src, dest)
	if ss.Channels != 2 || ds.Channels != 2 || ss.Passes < 2 || ds.Passes != ss.Passes || ss.RAMBytes != 64<<20 {
		t.Fatalf("summaries: %+v %+v", ss, ds)
	}
	t.Logf("source: %+v", ss)
}

// TestExampleErrors: bad input ends the binaries with a non-zero exit and
// one line naming the problem.
func TestExampleErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"source unknown flag", []string{"migrate-source", "--bogus"}, 2, "bogus"},
		{"source bad uri", []string{"migrate-source", "--to", "tcp:127.0.0.1"}, 1, "--to"},
		{"source no uri", []string{"migrate-source"}, 1, "--to is required"},
		{"source bad size", []string{"migrate-source", "--to", "tcp:127.0.0.1:1", "--ram-size", "12Q"}, 2, "bad size"},
		{"source refused", []string{"migrate-source", "--to", "tcp:127.0.0.1:1", "--ram-size", "1M"}, 1, "refused"},
		{"dest bad object", []string{"migrate-dest", "--incoming", "tcp:127.0.0.1:0", "--object", "tls-creds-x509,id=t,dir=/nonexistent,endpoint=server"}, 1, "/nonexistent"},
		{"dest bad object type", []string{"migrate-dest", "--incoming", "tcp:127.0.0.1:0", "--object", "tls-creds-bogus,id=t"}, 1, "tls-creds-bogus"},
		{"proxy no --to", []string{"migrate-proxy", "--listen", "unix:/tmp/x.sock"}, 1, "--to"},
		{"analyze no file", []string{"migrate-analyze"}, 1, "FILE"},
		{"analyze missing file", []string{"migrate-analyze", "/nonexistent/state"}, 1, "/nonexistent/state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, tc.args[0], tc.args[1:]...)
			code := p.wait(t)
			se := strings.TrimSpace(p.Stderr())
			if code != tc.code || strings.Count(se, "\n") != 0 || !strings.Contains(se, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and one line containing %q", code, se, tc.code, tc.want)
			}
		})
	}
}

// TestExamplesWrongCA: migrate-source trusts another CA than the one that
// signed migrate-dest's certificate. Both fail, naming the certificate.
func TestExamplesWrongCA(t *testing.T) {
	a, b := testpki.New(t, nil), testpki.New(t, nil)
	dest := start(t, "migrate-dest", "--incoming", "tcp:127.0.0.1:0,tls-creds=tls0",
		"--object", "tls-creds-x509,id=tls0,dir="+a.ServerDir+",endpoint=server")
	addr := dest.listening(t)
	src := start(t, "migrate-source", "--to", addr, "--ram-size", "1M",
		"--object", "tls-creds-x509,id=tls0,dir="+b.ClientDir+",endpoint=client")
	if code := src.wait(t); code == 0 || !strings.Contains(src.Stderr(), "certificate") {
		t.Fatalf("migrate-source exit %d, stderr %q; want failure naming the certificate", code, src.Stderr())
	}
	// The destination logs the refused channel and goes on waiting. (Its
	// "listening on ...,tls-creds=tls0" line already contains "tls": look
	// for the failed handshake itself.)
	refused := func() bool { return strings.Contains(dest.Stderr(), "tls-handshake") }
	testwait.Until(t, "migrate-dest logging the refused TLS channel", refused)
	if !strings.Contains(dest.Stderr(), "tls") || !refused() {
		t.Fatalf("migrate-dest did not log the refused TLS channel: %q", dest.Stderr())
	}
	dest.stop()
	if code := dest.wait(t); code == 0 {
		t.Fatalf("migrate-dest exit 0 after SIGTERM without a migration")
	}
	if !strings.Contains(dest.Stderr(), "migrate-dest: interrupted by a signal") {
		t.Fatalf("migrate-dest's error after SIGTERM does not say so: %q", dest.Stderr())
	}
	t.Logf("source: %s", strings.TrimSpace(src.Stderr()))
	t.Logf("dest: %s", strings.TrimSpace(dest.Stderr()))
}
