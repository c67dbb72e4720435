package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/examples/internal/demovm"
	"github.com/livemig/livemig/internal/leakcheck"
)

// TestMain lets the test binary play migrate-dest and migrate-source when
// the demo re-executes it, as the demo binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "migrate-dest":
			os.Exit(demovm.DestMain(os.Args[2:], os.Stdout, os.Stderr))
		case "migrate-source":
			os.Exit(demovm.SourceMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	leakcheck.Main(m)
}

// TestDemo runs the whole demo with a small guest: two child processes,
// TLS with a throwaway CA, both summaries verified, the temporary directory
// removed.
func TestDemo(t *testing.T) {
	// A temporary directory of its own: another demo running on the
	// machine (a CI clone, a parallel go test) must not count as ours.
	t.Setenv("TMPDIR", t.TempDir())
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "livemig-demo*"))
	var stdout, stderr strings.Builder
	code := run([]string{"--ram-size", "32M", "--dirty-rate", "20000", "--channels", "2", "--timeout", "2m"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"[source] source summary:", "[dest]   destination summary:", "over 2 channel(s)", "demo: done in"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, " verified") != 2 {
		t.Errorf("want two verified checksums:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "tls-creds=tls0") || !strings.Contains(stderr.String(), "pass 1") {
		t.Errorf("stderr lacks the TLS address or the progress:\n%s", stderr.String())
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "livemig-demo*"))
	if len(after) > len(before) {
		t.Errorf("temporary directories left behind: %v", after)
	}
}

func TestDemoBadFlag(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"--ram-size", "lots"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); lines != 0 || !strings.Contains(stderr.String(), "bad size") {
		t.Fatalf("want a one-line error naming the size, got:\n%s", stderr.String())
	}
}

func TestWritePKI(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr strings.Builder
	if code := run([]string{"--write-pki", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"server/ca-cert.pem", "server/server-cert.pem", "server/server-key.pem",
		"client/ca-cert.pem", "client/client-cert.pem", "client/client-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}
