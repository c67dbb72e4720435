// Package cli holds what the example binaries share: flag parsing with
// QEMU-style repeated --object options, sizes and rates, one-line fatal
// errors, the progress line and the summary.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/livemig/livemig/crypto"
)

// Usage describes a command for --help: a synopsis, a paragraph and
// examples; the flags are listed between them by the flag package.
type Usage struct {
	Synopsis    string
	Description string
	Examples    []string
}

// FlagSet is a flag.FlagSet that prints its Usage on --help only; a bad
// flag is reported in one line.
type FlagSet struct {
	*flag.FlagSet
	help func()
}

// NewFlagSet returns a flag set that prints u on --help, and errors as
// one line plus a hint.
func NewFlagSet(name string, u Usage, stderr io.Writer) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	help := func() {
		w := stderr
		fmt.Fprintf(w, "usage: %s\n\n%s\n\nflags:\n", u.Synopsis, strings.TrimSpace(u.Description))
		fs.SetOutput(w)
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0 B" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "  --%s%s\n    \t%s\n", f.Name, name, strings.ReplaceAll(usage, "\n", "\n    \t"))
		})
		fs.SetOutput(io.Discard)
		if len(u.Examples) > 0 {
			fmt.Fprintf(w, "\nexamples:\n")
			for _, e := range u.Examples {
				fmt.Fprintf(w, "  %s\n", e)
			}
		}
	}
	return &FlagSet{FlagSet: fs, help: help}
}

// Parse parses args; it returns (true, 0) to go on, or (false, code) when
// the program must exit: 0 after --help, 2 after a bad flag (reported on
// stderr in one line).
func Parse(fs *FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	err := fs.FlagSet.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.help()
		return false, 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v (see --help)\n", fs.Name(), err)
		return false, 2
	}
	return true, 0
}

// Objects is a repeatable --object flag.
type Objects []string

// String implements flag.Value.
func (o *Objects) String() string { return strings.Join(*o, " ") }

// Set implements flag.Value.
func (o *Objects) Set(s string) error { *o = append(*o, s); return nil }

// Registry loads every object into a new crypto.Registry.
func (o Objects) Registry() (*crypto.Registry, error) {
	return o.RegistryLog(nil)
}

// RegistryLog is Registry with logf as the Registry's Logf, set before the
// objects are loaded so that it also receives their load-time warnings
// (such as an ignored priority=). nil is silent.
func (o Objects) RegistryLog(logf func(format string, args ...any)) (*crypto.Registry, error) {
	r := crypto.NewRegistry()
	r.Logf = logf
	for _, spec := range o {
		if err := r.AddObject(spec); err != nil {
			return nil, fmt.Errorf("--object %s: %w", spec, err)
		}
	}
	return r, nil
}

// Size is a byte count flag accepting K, M, G, T suffixes (powers of 1024),
// as QEMU's -m and max-bandwidth do.
type Size int64

// String implements flag.Value.
func (s *Size) String() string { return FormatBytes(float64(*s)) }

// Set implements flag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// ParseSize parses "128M", "1G", "4096" or "1.5G" into bytes.
func ParseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	mult := 1.0
	if t != "" {
		switch strings.ToUpper(t[len(t)-1:]) {
		case "B":
			t = t[:len(t)-1]
		case "K":
			mult, t = 1<<10, t[:len(t)-1]
		case "M":
			mult, t = 1<<20, t[:len(t)-1]
		case "G":
			mult, t = 1<<30, t[:len(t)-1]
		case "T":
			mult, t = 1<<40, t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !(f >= 0 && f*mult <= 1<<62) { // also refuses NaN
		return 0, fmt.Errorf("bad size %q: want a number with an optional K, M, G or T suffix", v)
	}
	return int64(f * mult), nil
}

// FormatBytes prints n bytes with a binary unit.
func FormatBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

// Fail prints "name: err" on one line and returns exit code 1.
func Fail(stderr io.Writer, name string, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintf(stderr, "%s: %s\n", name, msg)
	return 1
}

// SignalContext is a context cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
