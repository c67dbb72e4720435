package demovm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// MaxPasses bounds iterative precopy: after it the final pass is forced
// even if the dirty set does not fit the downtime limit.
const MaxPasses = 30

// MaxStalls is how many passes in a row may fail to shrink the dirty set
// by a tenth before the final pass is forced: the workload dirties pages
// as fast as the link sends them, so more passes would not help.
const MaxStalls = 3

// SourceOptions are migrate-source's flags.
type SourceOptions struct {
	To            string
	Objects       cli.Objects
	RAMSize       cli.Size
	DirtyRate     int
	Channels      int
	MaxBandwidth  cli.Size
	DowntimeLimit time.Duration
	// StallTimeout fails the migration when a write to the destination
	// moves no byte for this long (a stopped or hung destination); 0
	// turns the watchdog off. --stall-timeout defaults to
	// migration.DefaultStallTimeout.
	StallTimeout time.Duration
	JSON         bool
	// Logf, if set, receives warnings, such as an ignored priority= of
	// an --object. nil is silent.
	Logf func(format string, args ...any)
}

// SourceMain is migrate-source's main: it returns the exit code.
func SourceMain(args []string, stdout, stderr io.Writer) int {
	const name = "migrate-source"
	o := SourceOptions{RAMSize: 128 << 20, DirtyRate: 25000, Channels: 1, DowntimeLimit: 300 * time.Millisecond, StallTimeout: migration.DefaultStallTimeout}
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "migrate-source --to URI [--object SPEC]... [--ram-size SIZE] [--dirty-rate PAGES_PER_SEC] [--channels N] [--max-bandwidth RATE] [--downtime-limit DURATION] [--stall-timeout DURATION] [--json]",
		Description: `Runs the demo VM (guest RAM in an anonymous mapping, a workload dirtying
pages, a dirty bitmap) and migrates it live to migrate-dest: iterative
precopy passes until the dirty pages left can be sent within the downtime
limit at the measured rate, then the workload stops, the rest is sent, and
the destination verifies a SHA-256 of the RAM. Exits 0 only when it matches.
A destination that stops taking data (a stopped or hung process, a dead
link) fails the migration once nothing has moved for --stall-timeout.`,
		Examples: []string{
			"migrate-source --to tcp:127.0.0.1:4444",
			"migrate-source --to tcp:dest.example.com:4444,tls-creds=tls0 --object tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=client --channels 2",
			"migrate-source --to unix:/run/mig.sock --ram-size 1G --dirty-rate 50000 --max-bandwidth 500M --downtime-limit 100ms --json",
		},
	}, stderr)
	fs.StringVar(&o.To, "to", "", "migration URI of the destination, QEMU syntax plus tls-creds/tls-hostname options,\nor QEMU's channels JSON (e.g. tcp:127.0.0.1:4444,tls-creds=tls0; required)")
	fs.Var(&o.Objects, "object", "a credentials object in QEMU -object syntax, repeatable\n(e.g. tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=client)")
	fs.Var(&o.RAMSize, "ram-size", "guest RAM size with K/M/G suffix (e.g. 256M)")
	fs.IntVar(&o.DirtyRate, "dirty-rate", o.DirtyRate, "pages per second the workload dirties; 0 for an idle guest (e.g. 50000)")
	fs.IntVar(&o.Channels, "channels", o.Channels, "number of parallel (TLS) channels, like QEMU's multifd-channels (e.g. 4)")
	fs.Var(&o.MaxBandwidth, "max-bandwidth", "bytes per second over all channels with K/M/G suffix; 0 is unlimited (e.g. 500M)")
	fs.DurationVar(&o.DowntimeLimit, "downtime-limit", o.DowntimeLimit, "largest pause of the workload to aim for (e.g. 100ms)")
	fs.DurationVar(&o.StallTimeout, "stall-timeout", o.StallTimeout, "fail when a write to the destination moves no byte for this long\n(a stopped or hung destination); 0 turns it off (e.g. 30s)")
	fs.BoolVar(&o.JSON, "json", false, "print the summary as one JSON object on stdout")
	if ok, code := cli.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Fail(stderr, name, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	o.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, name+": "+format+"\n", args...) }
	ctx, cancel := cli.SignalContext()
	defer cancel()
	sum, err := RunSource(ctx, &o, stderr)
	if sum != nil { // also on a checksum mismatch, as migrate-dest
		sum.Write(stdout, o.JSON)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted by a signal: %w", err)
		}
		return cli.Fail(stderr, name, err)
	}
	if sum.ChecksumStatus != "verified" {
		return 1
	}
	return 0
}

// Validate checks the numeric options (all but To and Objects), as
// RunSource does before anything else; the demo does it before it starts
// migrate-dest and migrate-source, since a source that fails on a flag
// leaves its destination waiting.
func (o *SourceOptions) Validate() error {
	switch {
	case !validRAMSize(int64(o.RAMSize)):
		return fmt.Errorf("--ram-size %d bytes: want a multiple of %d bytes from %d bytes to %s",
			int64(o.RAMSize), PageSize, PageSize, cli.FormatBytes(MaxRAMSize))
	case o.Channels < 1 || o.Channels > 64:
		return fmt.Errorf("--channels %d: want 1..64", o.Channels)
	case o.DirtyRate < 0:
		return fmt.Errorf("--dirty-rate %d: want 0 or more", o.DirtyRate)
	case o.MaxBandwidth < 0:
		return fmt.Errorf("--max-bandwidth %d: want 0 (unlimited) or more", int64(o.MaxBandwidth))
	case o.DowntimeLimit <= 0:
		return fmt.Errorf("--downtime-limit %v: want a positive duration", o.DowntimeLimit)
	case o.StallTimeout < 0:
		return fmt.Errorf("--stall-timeout %v: want 0 (off) or a positive duration", o.StallTimeout)
	}
	return nil
}

// RunSource migrates a fresh demo VM as o says, printing progress on
// stderr, and returns the summary.
func RunSource(ctx context.Context, o *SourceOptions, stderr io.Writer) (*Summary, error) {
	if o.To == "" {
		return nil, errors.New("--to is required (e.g. --to tcp:127.0.0.1:4444)")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	addr, err := uri.Parse(o.To)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	reg, err := o.Objects.RegistryLog(o.Logf)
	if err != nil {
		return nil, err
	}
	vm, err := NewVM(int64(o.RAMSize))
	if err != nil {
		return nil, fmt.Errorf("--ram-size: %w", err)
	}
	defer vm.Close()
	vm.Fill(uint64(time.Now().UnixNano()))
	vm.StartWorkload(o.DirtyRate)

	start := time.Now()
	sess, err := migration.DialSession(ctx, addr, sessionConfig(o, reg))
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	defer context.AfterFunc(ctx, func() { sess.Shutdown() })()

	wire := func() int64 { return sess.Stats().Written }
	var c counters
	prog := startProgress(stderr, &c, int64(o.RAMSize))
	defer func() {
		if prog != nil {
			prog.stop()
		}
	}()
	s := &sender{w: sess, vm: vm, c: &c}
	s.put(appendHeader(s.hdr[:0], int64(o.RAMSize)))

	converged := false
	stalls := 0
	pass := 1
	for ; ; pass++ {
		c.pass.Store(int64(pass))
		n := vm.DirtyCount()
		s.pass(pass, n)
		t0, b0 := time.Now(), c.bytes.Load()
		s.sendDirty()
		if err := s.flush(); err != nil {
			return nil, fmt.Errorf("pass %d: %w", pass, err)
		}
		el := max(time.Since(t0), time.Millisecond)
		rate := float64(c.bytes.Load()-b0) / el.Seconds()
		left := vm.DirtyCount()
		c.dirty.Store(int64(left))
		// Compare in float seconds: a tiny rate must not overflow a Duration
		// (which would turn negative and look converged).
		needSec := float64(left*PageSize) / rate
		need := time.Duration(min(needSec, 1e6) * float64(time.Second))
		prog.event("pass %d: %d pages in %v at %s/s; %d dirty pages left, %v to send them (limit %v)",
			pass, n, el.Round(time.Millisecond), cli.FormatBytes(rate), left, need.Round(time.Millisecond), o.DowntimeLimit)
		if needSec <= o.DowntimeLimit.Seconds() {
			converged = true
			break
		}
		if left*10 >= n*9 {
			stalls++
		} else {
			stalls = 0
		}
		if pass >= MaxPasses || stalls >= MaxStalls {
			prog.event("not converging (the workload dirties pages as fast as they are sent): forcing the final pass")
			break
		}
	}
	// Stop and copy: the workload pauses, the rest goes.
	stopped := time.Now()
	vm.StopWorkload()
	s.record(RecStop)
	pass++
	c.pass.Store(int64(pass))
	n := vm.DirtyCount()
	s.pass(pass, n)
	s.sendDirty()
	s.end(pass, converged)
	if err := s.flush(); err != nil {
		return nil, fmt.Errorf("final pass: %w", err)
	}
	rp := sess.ReturnPath()
	if _, _, err := readAckWithin(sess, rp, AckResumed); err != nil {
		return nil, err
	}
	downtime := time.Since(stopped)
	c.dirty.Store(0)
	prog.event("final pass %d: %d pages; destination resumed after %v of downtime", pass, n, downtime.Round(100*time.Microsecond))
	sum := sha256.Sum256(vm.RAM)
	s.put(append([]byte{RecSum}, sum[:]...))
	if err := s.flush(); err != nil {
		return nil, fmt.Errorf("sending the checksum: %w", err)
	}
	ok, theirs, err := readAckWithin(sess, rp, AckVerdict)
	if err != nil {
		return nil, err
	}
	prog.stop()
	prog = nil
	if err := sess.Close(); err != nil {
		return nil, fmt.Errorf("closing the session: %w", err)
	}
	el := time.Since(start) // wire() is safe now: the session's goroutines are done
	out := &Summary{Role: "source", RAMBytes: int64(o.RAMSize), Bytes: wire(), Pages: c.pages.Load(),
		DurationMS: float64(el) / 1e6, DowntimeMS: float64(downtime) / 1e6, Passes: pass,
		Channels: sess.Channels(), Converged: converged, Checksum: hex.EncodeToString(sum[:]), ChecksumStatus: "verified"}
	out.ThroughputBps = float64(out.Bytes) / el.Seconds()
	if !ok {
		out.ChecksumStatus = "MISMATCH"
		return out, fmt.Errorf("destination's RAM checksum sha256:%x does not match the source's sha256:%x", theirs[:8], sum[:8])
	}
	return out, nil
}

// sessionConfig is the Config of the source's Session. --max-bandwidth is
// the total over all channels, which is what Config.RateLimit means to
// DialSession: it gives each of the N channels a limit of RateLimit/N.
func sessionConfig(o *SourceOptions, reg *crypto.Registry) *migration.Config {
	return &migration.Config{Registry: reg, Channels: o.Channels, RateLimit: int64(o.MaxBandwidth),
		StallTimeout: stallTimeout(o.StallTimeout)}
}

// stallTimeout maps a --stall-timeout value (0 is off) to
// Config.StallTimeout (0 is the default, StallTimeoutOff is off).
func stallTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return migration.StallTimeoutOff
	}
	return d
}

// sender writes records; the first error sticks in the Session.
type sender struct {
	w interface {
		Write([]byte) (int, error)
		Flush() error
	}
	vm  *VM
	c   *counters
	hdr [32]byte
	err error
}

func (s *sender) put(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
		s.c.bytes.Add(int64(len(b)))
	}
}

func (s *sender) flush() error {
	if s.err != nil {
		return s.err
	}
	s.err = s.w.Flush()
	return s.err
}

func (s *sender) record(t byte) { s.put([]byte{t}) }

func (s *sender) pass(pass, pages int) {
	b := append(s.hdr[:0], RecPass)
	b = binary.BigEndian.AppendUint32(b, uint32(pass))
	s.put(binary.BigEndian.AppendUint64(b, uint64(pages)))
}

func (s *sender) end(passes int, converged bool) {
	b := append(s.hdr[:0], RecEnd)
	b = binary.BigEndian.AppendUint32(b, uint32(passes))
	if converged {
		s.put(append(b, 1))
	} else {
		s.put(append(b, 0))
	}
}

// sendDirty sends every dirty page, clearing its bit first.
func (s *sender) sendDirty() {
	s.vm.TakeDirty(func(p int) bool {
		page := s.vm.RAM[p*PageSize : (p+1)*PageSize]
		t := byte(RecPage)
		if isZero(page) {
			t = RecZero
		}
		b := append(s.hdr[:0], t)
		s.put(binary.BigEndian.AppendUint64(b, uint64(p)))
		if t == RecPage {
			s.put(page)
		}
		s.c.pages.Add(1)
		return s.err == nil
	})
}

// AckTimeout bounds the wait for each reply of the destination: it has all
// the pages by then, so a silent destination is a failed migration.
const AckTimeout = 30 * time.Second

// readAckWithin is readAck bounded by AckTimeout: when it passes, the
// session is shut down, which unblocks the read.
func readAckWithin(sess *migration.SourceSession, rp io.Reader, kind byte) (bool, [32]byte, error) {
	t := time.AfterFunc(AckTimeout, func() { sess.Shutdown() })
	ok, sum, err := readAck(rp, kind)
	if !t.Stop() { // fired: the session is shut down whatever readAck got
		return false, sum, fmt.Errorf("no reply from the destination within %v", AckTimeout)
	}
	return ok, sum, err
}
