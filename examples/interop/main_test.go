package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testwait"
)

// bin is the directory holding the example binaries, built once by
// TestMain; "" when the build failed (buildErr says why).
var (
	bin      string
	buildErr error
)

type runner struct{ m *testing.M }

func (r runner) Run() int {
	dir, err := os.MkdirTemp("", "interop-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/livemig/livemig/examples/migrate-proxy",
		"github.com/livemig/livemig/examples/migrate-analyze",
		"github.com/livemig/livemig/examples/migrate-source",
		"github.com/livemig/livemig/examples/migrate-dest")
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build: %v: %s", err, out)
	} else {
		bin = dir
	}
	return r.m.Run()
}

func TestMain(m *testing.M) { leakcheck.Main(runner{m}) }

// binary returns the path of an example binary or fails t.
func binary(t testing.TB, name string) string {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(bin, name)
}

// proc is a running example binary whose stderr is kept and scanned.
type proc struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
	lines  chan string
	done   chan struct{}
	err    error
}

// start runs an example binary and registers its cleanup: SIGTERM, then
// SIGKILL after 5 s, and Wait.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, lines: make(chan string, 100), done: make(chan struct{})}
	p.cmd = exec.Command(binary(t, name), args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.WaitDelay = 5 * time.Second
	se, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	so, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(se)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, se)
	}()
	go func() {
		defer wg.Done()
		b, _ := io.ReadAll(so)
		p.mu.Lock()
		p.stdout.Write(b)
		p.mu.Unlock()
	}()
	go func() {
		wg.Wait()
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.Stderr())
		}
	})
	return p
}

// stop sends SIGTERM, waits up to 5 s, then kills; it returns after Wait.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// listening waits for the "listening on ADDR" line and returns ADDR.
func (p *proc) listening(t testing.TB) string {
	t.Helper()
	var timeout <-chan time.Time
	if d := testwait.Deadline(t); !d.IsZero() {
		timeout = time.After(time.Until(d))
	}
	for {
		select {
		case l := <-p.lines:
			if _, a, ok := strings.Cut(l, "listening on "); ok {
				return strings.TrimSpace(a)
			}
		case <-p.done:
			t.Fatalf("%s exited before listening: %v\n%s", p.name, p.err, p.Stderr())
		case <-timeout:
			t.Fatalf("%s did not listen as the test binary's -timeout neared:\n%s", p.name, p.Stderr())
		}
	}
}

// waitLine waits until a line of stderr contains sub and returns it.
func (p *proc) waitLine(t testing.TB, sub string) string {
	t.Helper()
	testwait.Until(t, p.name+" logging "+sub, func() bool { return strings.Contains(p.Stderr(), sub) })
	for _, l := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
