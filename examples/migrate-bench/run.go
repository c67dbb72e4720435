package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/internal/qemuvm"
	"github.com/livemig/livemig/internal/testpki"
)

// name is the tool's name, the prefix of its messages.
const name = "migrate-bench"

// env is what every case shares: the flags, the machine, the throwaway
// PKI and a temporary directory removed at the end.
type env struct {
	size      int64  // bytes per run (a multiple of the page size)
	runs      int    // runs per case
	nproc     int    // CPUs this process may use
	cpuModel  string // from /proc/cpuinfo
	goVersion string
	exe       string      // this binary, re-executed for the children
	dir       string      // temporary directory of the whole run
	serverDir string      // QEMU-layout x509 server credentials (tls-creds-x509 dir)
	clientDir string      // ... and client credentials
	qemu      qemuvm.QEMU // the QEMU of the qemu group; zero Path when not installed
	stderr    io.Writer

	// qemuRAM is the keystream RAM file every QEMU source maps, written
	// by the first QEMU run (qemuRAMFile) and removed at exit.
	qemuRAM string
	// exits run at the end of the run, last registered first (atExit).
	exits []func()
}

// atExit registers f to run when the tool's run ends, after the cases,
// for files kept outside e.dir (such as a RAM file in /dev/shm).
func (e *env) atExit(f func()) { e.exits = append(e.exits, f) }

// logf prints a line of diagnostics on stderr.
func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.stderr, name+": "+format+"\n", args...)
}

// run is the tool's main: it parses args, runs the selected cases,
// prints the table or JSON on stdout and returns the exit code: 0 when
// every case passed or was skipped, 0 for --help, 2 for a flag the flag
// package rejects, 1 otherwise (a bad value, a failed case, a run
// stopped by a signal or --timeout).
func run(args []string, stdout, stderr io.Writer) int {
	size := cli.Size(1 << 30)
	all := caseList()
	var list strings.Builder
	for _, c := range all {
		fmt.Fprintf(&list, "\n  %-22s %-10s %s", c.name, c.group, c.about)
	}
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "go run ./examples/migrate-bench [--size 1G] [--runs 3] [--json] [--only NAME,...]",
		Description: `Measures livemig's transports against the raw wire (plain sockets, plain
crypto/tls) and QEMU migrations with and without livemig, on this machine in
one run. Each case moves SIZE bytes of 4 KiB pages, verified page by page on
arrival, and is reported as the median of its runs with its ratio to a
baseline measured in the same run, CPU seconds per GiB over both sides, and
the peak RSS of each side. Cases (name, group, what it measures):` + list.String(),
		Examples: []string{
			"go run ./examples/migrate-bench",
			"go run ./examples/migrate-bench --size 256M --runs 1 --only wire",
			"go run ./examples/migrate-bench --only tls-stream-2ch,qemu --json",
		},
	}, stderr)
	fs.Var(&size, "size", "bytes moved per run, K/M/G suffix, a multiple of 4 KiB (e.g. 1G)")
	runs := fs.Int("runs", 3, "runs per case; the median is reported (e.g. 5)")
	asJSON := fs.Bool("json", false, "print one JSON object per case on stdout instead of the table")
	only := fs.String("only", "", "comma-separated cases or groups to run, with their baselines (e.g. tls-stream,qemu)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long (e.g. 10m)")
	qemuBin := fs.String("qemu", "", "qemu-system-x86_64 binary for the qemu group (default: the one in PATH);\none unpacked under PREFIX/usr/bin gets -L PREFIX/usr/share/qemu\n(e.g. /opt/livemig/qemu-10.0/usr/bin/qemu-system-x86_64)")
	if ok, code := cli.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Fail(stderr, name, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	if size <= 0 || size%pageSize != 0 {
		return cli.Fail(stderr, name, fmt.Errorf("--size %d is not a positive multiple of %d", int64(size), pageSize))
	}
	if *runs < 1 || *runs > 100 {
		return cli.Fail(stderr, name, fmt.Errorf("--runs %d is out of range 1..100", *runs))
	}
	if *timeout <= 0 {
		return cli.Fail(stderr, name, fmt.Errorf("--timeout %v is not positive", *timeout))
	}
	cases, err := selectCases(all, *only)
	if err != nil {
		return cli.Fail(stderr, name, err)
	}
	ctx, cancel := cli.SignalContext()
	defer cancel()
	ctx, cancelT := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("--timeout %v reached", *timeout))
	defer cancelT()

	e, cleanup, err := newEnv(int64(size), *runs, *qemuBin, stderr)
	if err != nil {
		return cli.Fail(stderr, name, err)
	}
	defer cleanup()

	start := time.Now()
	p := newProgress(stderr, len(cases)**runs)
	outs := runAll(ctx, e, cases, *runs, func(r, i int, c *benchCase) {
		p.show(fmt.Sprintf("run %d/%d  %-22s", r, *runs, c.name))
	})
	p.done(fmt.Sprintf("%d case(s) x %d run(s) in %.0f s", len(cases), *runs, time.Since(start).Seconds()))
	rs := results(e, outs)
	if *asJSON {
		if err := writeJSON(stdout, rs); err != nil {
			return cli.Fail(stderr, name, err)
		}
	} else {
		writeTable(stdout, e, rs)
	}
	failed := 0
	for _, r := range rs {
		if r.Error != "" {
			failed++
			e.logf("%s failed: %s", r.Case, r.Error)
		}
	}
	if ctx.Err() != nil {
		return cli.Fail(stderr, name, fmt.Errorf("stopped before the end: %w", context.Cause(ctx)))
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// newEnv describes the machine, finds the QEMU (qemuBin, or the one in
// PATH when qemuBin is ""), writes the throwaway PKI and returns a
// cleanup function that runs what atExit registered and removes the
// temporary directory. A qemuBin that cannot be run is an error; a
// missing default QEMU only skips the qemu group.
func newEnv(size int64, runs int, qemuBin string, stderr io.Writer) (*env, func(), error) {
	var q qemuvm.QEMU
	if qemuBin != "" {
		var err error
		if q, err = qemuvm.Probe(qemuBin); err != nil {
			return nil, nil, fmt.Errorf("--qemu: %w", err)
		}
	} else if p, err := qemuvm.Probe(qemuvm.Binary); err == nil {
		q = p
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "migrate-bench")
	if err != nil {
		return nil, nil, err
	}
	var e *env
	cleanup := func() {
		if e != nil {
			for i := len(e.exits) - 1; i >= 0; i-- {
				e.exits[i]()
			}
		}
		os.RemoveAll(dir)
	}
	if _, err := testpki.Write(filepath.Join(dir, "pki"), nil); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("writing the throwaway CA: %w", err)
	}
	e = &env{
		size: size, runs: runs, nproc: runtime.NumCPU(), cpuModel: cpuModel(), goVersion: runtime.Version(),
		exe: exe, dir: dir, stderr: stderr,
		serverDir: filepath.Join(dir, "pki", "server"), clientDir: filepath.Join(dir, "pki", "client"),
		qemu: q,
	}
	return e, cleanup, nil
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// progress shows one line that is rewritten in place on a terminal and
// printed line by line elsewhere.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	n     int
	width int
}

// newProgress returns a progress line on w for total runs.
func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// show counts one more run and shows s as its line.
func (p *progress) show(s string) {
	p.n++
	line := fmt.Sprintf("%s: [%d/%d] %s", name, p.n, p.total, s)
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(0, p.width-len(line))
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// done clears the line on a terminal and prints s as the last one.
func (p *progress) done(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	}
	fmt.Fprintf(p.w, "%s: %s\n", name, s)
}
