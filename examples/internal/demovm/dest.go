package demovm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// DefaultMaxRAM is the largest RAM a destination accepts when --ram-size
// is not given.
const DefaultMaxRAM = 16 << 30

// DestOptions are migrate-dest's flags.
type DestOptions struct {
	Incoming string
	Objects  cli.Objects
	RAMSize  cli.Size
	// SessionTimeout is how long a session may take to open all its
	// channels (migration.Config.SessionTimeout); 0 means the default.
	SessionTimeout time.Duration
	// StallTimeout fails a write to the source (the acknowledgements)
	// that moves no byte for this long; 0 turns the watchdog off.
	// --stall-timeout defaults to migration.DefaultStallTimeout. The
	// wait for the source's data is bounded by IdleTimeout instead.
	StallTimeout time.Duration
	JSON         bool
	// Listening, if set, is called with the address really listened on
	// (the port bound for tcp:HOST:0) before waiting for the source.
	Listening func(addr string)
	// Logf, if set, receives refused channels (a failed TLS handshake, a
	// wrong hello), expired sessions and failed migrations; the
	// destination goes on waiting for a good source. It also receives
	// warnings, such as an ignored priority= of an --object.
	Logf func(format string, args ...any)
}

// DestMain is migrate-dest's main: it returns the exit code.
func DestMain(args []string, stdout, stderr io.Writer) int {
	const name = "migrate-dest"
	var o DestOptions
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "migrate-dest --incoming URI [--object SPEC]... [--ram-size SIZE] [--session-timeout DURATION] [--stall-timeout DURATION] [--json]",
		Description: `Accepts a migration of the demo VM from migrate-source, prints progress
while pages arrive, verifies the SHA-256 of the RAM that the source sends at
completion and prints a summary. Exits 0 only when the checksum matches.
A source that is refused (a failed TLS handshake, a wrong hello), a session
that expires before all its channels arrive (--session-timeout) and a
migration that fails are logged in one line each, and migrate-dest goes on
waiting for another source. It exits when a migration completes (1 if the
checksums differ), when the source of a running migration sends nothing for
` + IdleTimeout.String() + ` (the idle timeout), or on SIGINT or SIGTERM. exec:, fd: and file:
carry one source only: there a failure ends migrate-dest.
With tcp:HOST:0 it listens on a free port and prints it
("listening on tcp:127.0.0.1:PORT").`,
		Examples: []string{
			"migrate-dest --incoming tcp:0.0.0.0:4444",
			"migrate-dest --incoming tcp:0.0.0.0:4444,tls-creds=tls0 --object tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=server",
			"migrate-dest --incoming unix:/run/mig.sock --ram-size 1G --json",
		},
	}, stderr)
	fs.StringVar(&o.Incoming, "incoming", "", "migration URI to listen on, QEMU -incoming syntax plus tls-creds/tls-authz options,\nor QEMU's channels JSON (e.g. tcp:0.0.0.0:4444,tls-creds=tls0; required)")
	fs.Var(&o.Objects, "object", "a credentials or authz object in QEMU -object syntax, repeatable\n(e.g. tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=server)")
	fs.Var(&o.RAMSize, "ram-size", "expected guest RAM size with K/M/G suffix; 0 accepts the source's up to 16G (e.g. 256M)")
	o.SessionTimeout = migration.DefaultSessionTimeout
	fs.DurationVar(&o.SessionTimeout, "session-timeout", o.SessionTimeout, "how long a source may take to open all the channels of its session (e.g. 1m)")
	o.StallTimeout = migration.DefaultStallTimeout
	fs.DurationVar(&o.StallTimeout, "stall-timeout", o.StallTimeout, "fail when a write to the source (the acknowledgements) moves no byte\nfor this long; 0 turns it off (e.g. 30s). Waiting for the source's data\nis bounded by the idle timeout instead")
	fs.BoolVar(&o.JSON, "json", false, "print the summary as one JSON object on stdout")
	if ok, code := cli.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Fail(stderr, name, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	o.Listening = func(addr string) { fmt.Fprintf(stderr, "%s: listening on %s\n", name, addr) }
	o.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, name+": "+format+"\n", args...) }
	ctx, cancel := cli.SignalContext()
	defer cancel()
	sum, err := RunDest(ctx, &o, stderr)
	if sum != nil {
		sum.Write(stdout, o.JSON)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted by a signal: %w", err)
		}
		return cli.Fail(stderr, name, err)
	}
	return 0
}

// Validate checks --ram-size, --session-timeout and --stall-timeout, as
// RunDest does before it listens: with a RAM size no VM can have, it
// would wait for a source only to refuse it.
func (o *DestOptions) Validate() error {
	if s := int64(o.RAMSize); s != 0 && !validRAMSize(s) {
		return fmt.Errorf("--ram-size %d bytes: want 0 (the source's, up to %s) or a multiple of %d bytes from %d bytes to %s",
			s, cli.FormatBytes(DefaultMaxRAM), PageSize, PageSize, cli.FormatBytes(MaxRAMSize))
	}
	if o.SessionTimeout < 0 {
		return fmt.Errorf("--session-timeout %v: want a positive duration", o.SessionTimeout)
	}
	if o.StallTimeout < 0 {
		return fmt.Errorf("--stall-timeout %v: want 0 (off) or a positive duration", o.StallTimeout)
	}
	return nil
}

// RunDest receives a migration as o says, printing progress on stderr:
// it goes on waiting after an expired session or a failed migration
// (logged through o.Logf), except on exec:, fd: and file:, which carry
// one source. It returns when a migration completes (on a checksum
// mismatch with the summary and an error), when a running migration's
// source is idle for IdleTimeout (an error wrapping ErrIdle), or when
// ctx ends.
func RunDest(ctx context.Context, o *DestOptions, stderr io.Writer) (*Summary, error) {
	if o.Incoming == "" {
		return nil, errors.New("--incoming is required (e.g. --incoming tcp:0.0.0.0:4444)")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	addr, err := uri.Parse(o.Incoming)
	if err != nil {
		return nil, fmt.Errorf("--incoming: %w", err)
	}
	reg, err := o.Objects.RegistryLog(o.Logf)
	if err != nil {
		return nil, err
	}
	maxRAM := int64(o.RAMSize)
	if maxRAM == 0 {
		maxRAM = DefaultMaxRAM
	}
	ln, err := migration.Listen(ctx, addr, &migration.Config{Registry: reg, Logf: o.Logf,
		SessionTimeout: o.SessionTimeout, StallTimeout: stallTimeout(o.StallTimeout)})
	if err != nil {
		return nil, err
	}
	srv, err := migration.NewServer(ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	defer srv.Close()
	single := addr.Transport == uri.Exec || addr.Transport == uri.FD || addr.Transport == uri.File
	logf := func(format string, args ...any) {
		if o.Logf != nil {
			o.Logf(format, args...)
		}
	}
	for {
		sess, err := srv.AcceptSession(ctx)
		var se *migration.SessionError
		switch {
		case err == nil:
		case errors.As(err, &se) && !single && ctx.Err() == nil:
			logf("%v; waiting for another source", err)
			continue
		default:
			return nil, err
		}
		sum, err := receive(ctx, o, sess, stderr, maxRAM)
		if err == nil || sum != nil || single || ctx.Err() != nil || errors.Is(err, ErrIdle) {
			return sum, err
		}
		logf("session %s failed: %v; waiting for another source", sess.ID(), err)
	}
}

// ErrIdle is wrapped by RunDest's error when the source of a running
// migration sent nothing for IdleTimeout.
var ErrIdle = fmt.Errorf("no data from the source for %v", IdleTimeout)

// receive runs one migration over sess and closes it. A summary comes
// back only from a migration that completed, with an error when the
// checksums differ.
func receive(ctx context.Context, o *DestOptions, sess *migration.DestinationSession, stderr io.Writer, maxRAM int64) (*Summary, error) {
	defer sess.Close()
	defer context.AfterFunc(ctx, func() { sess.Shutdown() })()
	start := time.Now()

	dec := NewDecoder(sess)
	size, err := dec.ReadHeader(maxRAM)
	if err != nil {
		return nil, err
	}
	if o.RAMSize != 0 && size != int64(o.RAMSize) {
		return nil, fmt.Errorf("source's RAM is %s, --ram-size says %s", cli.FormatBytes(float64(size)), cli.FormatBytes(float64(o.RAMSize)))
	}
	vm, err := NewVM(size)
	if err != nil {
		return nil, err
	}
	defer vm.Close()
	wire := func() int64 { return sess.Stats().Read }
	var c counters
	prog := startProgress(stderr, &c, size)
	defer func() {
		if prog != nil {
			prog.stop()
		}
	}()
	rp := sess.ReturnPath()
	var stopped time.Time
	var downtime time.Duration
	passes := 0
	converged := false
	idle := watchIdle(IdleTimeout, c.bytes.Load, func() { sess.Shutdown() })
	defer idle.stop()
	for {
		rec, err := dec.Next(vm.RAM)
		if err != nil {
			if idle.stop() {
				return nil, fmt.Errorf("%w: %w", ErrIdle, err)
			}
			return nil, err
		}
		c.bytes.Store(dec.Offset())
		switch rec.Type {
		case RecPage, RecZero:
			c.pages.Add(1)
		case RecPass:
			c.pass.Store(int64(rec.Pass))
			prog.event("pass %d: %d pages coming", rec.Pass, rec.Pages)
		case RecStop:
			stopped = time.Now()
		case RecEnd:
			if stopped.IsZero() {
				return nil, errors.New("source ended without stopping its workload")
			}
			passes = int(rec.Pass)
			converged = rec.Converged
			rp.PutBE32(AckMagic)
			rp.PutByte(AckResumed)
			if err := rp.Flush(); err != nil {
				return nil, fmt.Errorf("acknowledging the end: %w", err)
			}
			downtime = time.Since(stopped)
			prog.event("all pages received; resumed after %v of downtime", downtime.Round(100*time.Microsecond))
		case RecSum:
			if passes == 0 {
				return nil, errors.New("source sent its checksum before the end record")
			}
			mine := sha256.Sum256(vm.RAM)
			ok := mine == rec.Sum
			rp.PutBE32(AckMagic)
			rp.PutByte(AckVerdict)
			if ok {
				rp.PutByte(1)
			} else {
				rp.PutByte(0)
			}
			rp.PutBuffer(mine[:])
			if err := rp.Flush(); err != nil {
				return nil, fmt.Errorf("sending the verdict: %w", err)
			}
			// The source closes the session once it has the verdict.
			if _, err := dec.Next(vm.RAM); !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("waiting for the source to close: %w", err)
			}
			prog.stop()
			prog = nil
			sess.Close() // the session's goroutines end: wire() is safe
			el := time.Since(start)
			out := &Summary{Role: "destination", RAMBytes: size, Bytes: wire(), Pages: c.pages.Load(),
				DurationMS: float64(el) / 1e6, ThroughputBps: float64(wire()) / el.Seconds(),
				DowntimeMS: float64(downtime) / 1e6, Passes: passes, Channels: sess.Channels(),
				Converged: converged, Checksum: hex.EncodeToString(mine[:]), ChecksumStatus: "verified"}
			if !ok {
				out.ChecksumStatus = "MISMATCH"
				return out, fmt.Errorf("RAM checksum sha256:%x does not match the source's sha256:%x", mine[:8], rec.Sum[:8])
			}
			return out, nil
		}
	}
}
