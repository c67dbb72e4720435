package uri

import "strings"

// Argv is the program and arguments of an exec transport that runs
// without a shell, as QEMU's JSON exec address gives them ("args": [...]).
// It is a comparable value, so that an Address stays one: it keeps the
// list as one string, the items joined by NUL bytes, which no argument of
// a program can contain. The zero Argv holds no program.
type Argv struct {
	joined string // items joined by "\x00"; "" for none (argv[0] is never empty)
}

// makeArgv returns the Argv of args. The caller has checked that args is
// not empty, that args[0] is not empty and that no item holds a NUL byte.
func makeArgv(args []string) Argv {
	return Argv{joined: strings.Join(args, "\x00")}
}

// Strings returns a new slice with the program and its arguments, or nil
// for the zero Argv.
func (v Argv) Strings() []string {
	if v.joined == "" {
		return nil
	}
	return strings.Split(v.joined, "\x00")
}

// IsZero reports whether v holds no program.
func (v Argv) IsZero() bool { return v.joined == "" }
