package qemuvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// EnvQEMU names the environment variable that chooses the QEMUs: a
// comma-separated list of qemu-system-x86_64 binaries (paths, or names
// looked up in PATH). Unset or empty means [DefaultQEMUs].
const EnvQEMU = "LIVEMIG_QEMU"

// PrefixGlob matches the binaries of QEMUs that .ci/deps unpacks beside
// the system's: each one in a prefix of its own, with its firmware in
// PREFIX/usr/share/qemu.
const PrefixGlob = "/opt/livemig/qemu-*/usr/bin/" + Binary

// seabiosDir holds the system's SeaBIOS, whose bios-256k.bin an unpacked
// QEMU's data directory does not carry (Debian's qemu-system-data links it
// from the seabios package).
const seabiosDir = "/usr/share/seabios"

// QEMU is one installed qemu-system-x86_64: its binary, the firmware
// directory it needs and its version.
type QEMU struct {
	// Path is the binary's absolute path.
	Path string
	// DataDir is the firmware directory given with -L, "" for a QEMU that
	// finds its own (the system's).
	DataDir string
	// Version is the version QEMU prints, such as "10.0.2".
	Version string
	// Major, Minor and Micro are Version's numbers.
	Major, Minor, Micro int
}

// String names q for subtests and logs: "qemu-10.0.2".
func (q QEMU) String() string {
	if q.Version == "" {
		return "qemu-unknown"
	}
	return "qemu-" + q.Version
}

// AtLeast reports whether q's version is major.minor or later.
func (q QEMU) AtLeast(major, minor int) bool {
	return q.Major > major || q.Major == major && q.Minor >= minor
}

// Args returns the options that must come first on q's command line: -L
// for its firmware directory and the system's SeaBIOS, or nothing.
func (q QEMU) Args() []string {
	if q.DataDir == "" {
		return nil
	}
	args := []string{"-L", q.DataDir}
	if fi, err := os.Stat(seabiosDir); err == nil && fi.IsDir() {
		args = append(args, "-L", seabiosDir)
	}
	return args
}

// Command returns an exec.Cmd that runs q with its firmware options
// followed by args, killed when ctx ends (exec.CommandContext).
func (q QEMU) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, q.Path, append(q.Args(), args...)...)
}

var versionRE = regexp.MustCompile(`version (\d+)\.(\d+)\.(\d+)`)

// Probe runs bin --version and returns the QEMU it describes. bin is a
// path or a name looked up in PATH. A binary under PREFIX/usr/bin or
// PREFIX/bin whose PREFIX/.../share/qemu is not the system's
// /usr/share/qemu gets that directory as its DataDir.
func Probe(bin string) (QEMU, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return QEMU{}, fmt.Errorf("qemuvm: %w", err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return QEMU{}, fmt.Errorf("qemuvm: %w", err)
	}
	q := QEMU{Path: path}
	data := filepath.Join(filepath.Dir(path), "..", "share", "qemu")
	if fi, err := os.Stat(data); err == nil && fi.IsDir() && filepath.Clean(data) != "/usr/share/qemu" {
		q.DataDir = filepath.Clean(data)
	}
	out, err := q.Command(context.Background(), "--version").Output()
	if err != nil {
		return QEMU{}, fmt.Errorf("qemuvm: %s --version: %w", path, err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		line, _, _ := strings.Cut(string(out), "\n")
		return QEMU{}, fmt.Errorf("qemuvm: %s --version printed no version: %q", path, line)
	}
	q.Version = m[1] + "." + m[2] + "." + m[3]
	q.Major, _ = strconv.Atoi(m[1])
	q.Minor, _ = strconv.Atoi(m[2])
	q.Micro, _ = strconv.Atoi(m[3])
	return q, nil
}

// DefaultQEMUs returns the binaries used when EnvQEMU is unset: Binary as
// found in PATH, then every binary matching PrefixGlob, oldest version
// directory name first.
func DefaultQEMUs() []string {
	bins := []string{Binary}
	extra, _ := filepath.Glob(PrefixGlob)
	sort.Strings(extra)
	return append(bins, extra...)
}

var installed struct {
	once sync.Once
	list []QEMU
	err  error
}

// Installed returns the QEMUs to run, probed once per process: those
// EnvQEMU lists, in its order, or else those of DefaultQEMUs that exist.
// A binary that EnvQEMU names but that cannot be run is an error; a
// default one that is missing is left out. Two entries that resolve to
// the same binary count once. The result is empty, without error, when
// no QEMU is installed and EnvQEMU is unset.
func Installed() ([]QEMU, error) {
	installed.once.Do(func() {
		installed.list, installed.err = probeAll(os.Getenv(EnvQEMU))
	})
	return installed.list, installed.err
}

func probeAll(env string) ([]QEMU, error) {
	explicit := strings.TrimSpace(env) != ""
	bins := DefaultQEMUs()
	if explicit {
		bins = strings.Split(env, ",")
	}
	var list []QEMU
	seen := map[string]bool{}
	for _, b := range bins {
		b = strings.TrimSpace(b)
		if b == "" {
			return nil, fmt.Errorf("qemuvm: %s=%q has an empty entry", EnvQEMU, env)
		}
		q, err := Probe(b)
		if errors.Is(err, exec.ErrNotFound) && !explicit {
			continue
		}
		if err != nil {
			if explicit {
				return nil, fmt.Errorf("%w (from %s=%q)", err, EnvQEMU, env)
			}
			return nil, err
		}
		if seen[q.Path] {
			continue
		}
		seen[q.Path] = true
		list = append(list, q)
	}
	return list, nil
}

// Default returns the first of the Installed QEMUs: the one a zero
// Options.QEMU means.
func Default() (QEMU, error) {
	list, err := Installed()
	if err != nil {
		return QEMU{}, err
	}
	if len(list) == 0 {
		return QEMU{}, fmt.Errorf("qemuvm: no QEMU installed: %s is not in PATH and %s is unset", Binary, EnvQEMU)
	}
	return list[0], nil
}
