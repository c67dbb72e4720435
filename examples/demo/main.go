// Command demo is the README's first command: a live migration over TLS on
// loopback, in one command.
//
//	go run ./examples/demo
//
// It writes a throwaway certificate authority with server and client
// certificates in QEMU's tls-creds-x509 layout into a temporary directory,
// starts migrate-dest and migrate-source as two child processes (this
// binary re-executed as each of them, so nothing more is compiled) over
// tcp:127.0.0.1:PORT with tls-creds, shows both outputs prefixed by their
// role, and ends with both summaries. The temporary directory and the
// children are gone when it returns.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livemig/livemig/crypto/cryptotest"
	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/examples/internal/demovm"
	"github.com/livemig/livemig/uri"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "migrate-dest":
			os.Exit(demovm.DestMain(os.Args[2:], os.Stdout, os.Stderr))
		case "migrate-source":
			os.Exit(demovm.SourceMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	ctx, cancel := cli.SignalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// run is the demo's main; ctx ends it (the signal context in main).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "demo"
	ramSize := cli.Size(256 << 20)
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "go run ./examples/demo [--ram-size SIZE] [--dirty-rate PAGES_PER_SEC] [--channels N] [--max-bandwidth RATE] [--downtime-limit DURATION] [--timeout DURATION] [--write-pki DIR]",
		Description: `Runs a live migration of the demo VM over TLS on loopback: a throwaway CA
and certificates in QEMU's layout, migrate-dest and migrate-source as two
processes, both outputs shown, summaries at the end. Cleans up after itself.`,
		Examples: []string{
			"go run ./examples/demo",
			"go run ./examples/demo --write-pki /tmp/pki",
			"go run ./examples/demo --ram-size 512M --dirty-rate 100000 --channels 2",
		},
	}, stderr)
	fs.Var(&ramSize, "ram-size", "guest RAM size with K/M/G suffix (e.g. 256M)")
	dirty := fs.Int("dirty-rate", 25000, "pages per second the workload dirties (e.g. 50000)")
	channels := fs.Int("channels", 1, "parallel TLS channels (e.g. 2)")
	var maxBW cli.Size
	fs.Var(&maxBW, "max-bandwidth", "bytes per second, K/M/G suffix; 0 is unlimited (e.g. 200M)")
	downtime := fs.Duration("downtime-limit", 50*time.Millisecond, "downtime to aim for (e.g. 20ms)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up and kill both processes after this long (e.g. 30s)")
	writePKI := fs.String("write-pki", "", "only write a throwaway CA with DIR/server and DIR/client in QEMU's\ntls-creds-x509 layout, for trying the binaries by hand, and exit (e.g. /tmp/pki)")
	if ok, code := cli.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Fail(stderr, name, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	if *writePKI != "" {
		if _, err := cryptotest.Write(*writePKI, nil); err != nil {
			return cli.Fail(stderr, name, err)
		}
		fmt.Fprintf(stdout, "demo: wrote %s (endpoint=server) and %s (endpoint=client); the certificates name localhost and 127.0.0.1\n",
			filepath.Join(*writePKI, "server"), filepath.Join(*writePKI, "client"))
		return 0
	}
	// Every number is checked before a process starts: a source that fails
	// on one would leave its destination waiting.
	src := demovm.SourceOptions{RAMSize: ramSize, DirtyRate: *dirty, Channels: *channels, MaxBandwidth: maxBW, DowntimeLimit: *downtime}
	if err := src.Validate(); err != nil {
		return cli.Fail(stderr, name, err)
	}
	if *timeout <= 0 {
		return cli.Fail(stderr, name, fmt.Errorf("--timeout %v: want a positive duration", *timeout))
	}
	ctx, cancelT := context.WithTimeout(ctx, *timeout)
	defer cancelT()
	start := time.Now()
	if err := demo(ctx, stdout, stderr, int64(ramSize), *dirty, *channels, int64(maxBW), *downtime); err != nil {
		return cli.Fail(stderr, name, err)
	}
	fmt.Fprintf(stdout, "demo: done in %.1f s\n", time.Since(start).Seconds())
	return 0
}

func demo(ctx context.Context, stdout, stderr io.Writer, ramSize int64, dirty, channels int, maxBW int64, downtime time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "livemig-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := cryptotest.Write(dir, nil); err != nil {
		return fmt.Errorf("writing the throwaway CA: %w", err)
	}
	serverDir, clientDir := filepath.Join(dir, "server"), filepath.Join(dir, "client")
	var out sync.Mutex // serializes the children's lines and ours
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(stderr, "demo: "+format+"\n", args...)
	}
	say("throwaway CA and certificates in %s and %s (QEMU layout)", serverDir, clientDir)

	destArgs := []string{"migrate-dest", "--incoming", "tcp:127.0.0.1:0,tls-creds=tls0",
		"--object", "tls-creds-x509,id=tls0,dir=" + serverDir + ",endpoint=server,verify-peer=on"}
	say("starting %s", strings.Join(destArgs, " "))
	listening := make(chan string, 1)
	dest, err := startChild(ctx, self, destArgs, "[dest]   ", stdout, stderr, &out, func(line string) {
		if _, a, ok := strings.Cut(line, "listening on "); ok {
			select {
			case listening <- strings.TrimSpace(a):
			default:
			}
		}
	})
	if err != nil {
		return err
	}
	defer dest.kill()
	var addr string
	select {
	case addr = <-listening:
	case <-dest.done:
		return fmt.Errorf("migrate-dest exited before listening: %v", dest.err)
	case <-ctx.Done():
		return fmt.Errorf("waiting for migrate-dest to listen: %w", ctx.Err())
	}
	a, err := uri.Parse(addr)
	if err != nil {
		return fmt.Errorf("migrate-dest printed %q: %w", addr, err)
	}
	a.TLS = uri.TLS{Creds: "tls0"}
	srcArgs := []string{"migrate-source", "--to", a.String(),
		"--object", "tls-creds-x509,id=tls0,dir=" + clientDir + ",endpoint=client",
		"--ram-size", fmt.Sprint(ramSize), "--dirty-rate", fmt.Sprint(dirty), "--channels", fmt.Sprint(channels),
		"--max-bandwidth", fmt.Sprint(maxBW), "--downtime-limit", downtime.String()}
	say("starting %s", strings.Join(srcArgs, " "))
	src, err := startChild(ctx, self, srcArgs, "[source] ", stdout, stderr, &out, nil)
	if err != nil {
		return err
	}
	defer src.kill()
	// The first child to fail ends the demo, and the deferred kills stop
	// the other at once: it cannot succeed alone, and might not notice for
	// long (a destination waits for its source; a rate-limited source
	// learns that its destination is gone only at its next write).
	srcDone, destDone := src.done, dest.done
	for srcDone != nil || destDone != nil {
		var c *child
		select {
		case <-srcDone:
			c, srcDone = src, nil
		case <-destDone:
			c, destDone = dest, nil
		case <-ctx.Done():
			return fmt.Errorf("migration did not finish: %w", ctx.Err())
		}
		if c.err != nil {
			return c.failure()
		}
	}
	return nil
}

type child struct {
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	err  error  // how it ended; set before done is closed
	last string // its last line on stderr; set before done is closed
}

// failure is the error of a child that failed: how it ended and its last
// line on stderr, which says why when it could.
func (c *child) failure() error {
	if c.last == "" {
		return fmt.Errorf("%s: %w", c.args[0], c.err)
	}
	return fmt.Errorf("%s: %w (its last line: %s)", c.args[0], c.err, c.last)
}

// startChild runs self with args, copying its stdout and stderr line by
// line with prefix; onLine sees every stderr line.
func startChild(ctx context.Context, self string, args []string, prefix string, stdout, stderr io.Writer, mu *sync.Mutex, onLine func(string)) (*child, error) {
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	so, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	se, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{args: args, cmd: cmd, done: make(chan struct{})}
	var wg sync.WaitGroup
	copyLines := func(r io.Reader, w io.Writer, f func(string)) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f != nil {
				f(line)
			}
			mu.Lock()
			fmt.Fprintf(w, "%s%s\n", prefix, line)
			mu.Unlock()
		}
	}
	wg.Add(2)
	go copyLines(so, stdout, nil)
	go copyLines(se, stderr, func(line string) {
		c.last = line
		if onLine != nil {
			onLine(line)
		}
	})
	go func() {
		wg.Wait()
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// kill ends the child if it still runs and waits for it.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Kill()
	<-c.done
}
