package uri

import (
	"fmt"
	"strings"
)

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

// ExecArgv returns the Address of an exec transport that runs the program
// args[0] with the arguments args[1:], without a shell, as Parse returns
// it for QEMU's JSON {"transport":"exec","args":[...]}; so the same rules
// apply: at least one item, args[0] not empty, every item valid UTF-8
// without NUL bytes, and the JSON form within [MaxJSONLength]. As with
// Parse, ["/bin/sh", "-c", COMMAND] gives the Address of exec:COMMAND
// when that URI says the same. An error is an [*Error] about that JSON.
func ExecArgv(args ...string) (Address, error) {
	for i, s := range args {
		if j := invalidUTF8(s); j >= 0 {
			return Address{}, fmt.Errorf("uri: exec argument %d is not valid UTF-8 at byte %d, which QEMU's JSON cannot carry", i, j)
		}
	}
	var w jsonWriter
	w.b.WriteString(`{"channel-type":"main","addr":{"transport":"exec","args":[`)
	for i, s := range args {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.quote(s)
	}
	w.b.WriteString("]}}")
	return Parse(w.b.String())
}
