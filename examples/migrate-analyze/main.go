// Command migrate-analyze reads a QEMU migration stream (magic 0x5145564D,
// version 3) from a file, a file: migration URI or stdin, lists its
// sections, configuration and RAM blocks, checks that it ends in EOF, and
// reports the first malformed byte with its offset. Run it with --help for
// its flags and examples.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/internal/vmstream"
	"github.com/livemig/livemig/uri"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const name = "migrate-analyze"
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "migrate-analyze [--json] FILE | file:FILE[,offset=N] | JSON | -",
		Description: `Reads a QEMU migration stream and checks it: lists its sections (type, id,
name, instance, version, size) and the configuration section, decodes the
RAM records and lists the RAM blocks (size, pages present, zero pages),
checks that the stream ends in EOF, and reports the first malformed byte
with its offset. Exits 0 for a well-formed stream, 1 otherwise.

The input is a FILE as saved by "migrate exec:cat > FILE", by QEMU's
"migrate file:FILE" or by "migrate-proxy --to file:FILE"; or the migration
URI file:FILE,offset=N for a stream QEMU wrote from byte N of FILE on
("migrate file:FILE,offset=N"; N in decimal or 0x hex), also written as
QEMU's JSON file channel, {"channel-type":"main","addr":{"transport":"file",
"filename":FILE,"offset":N}}; or - for stdin.
Offsets in the listing and in errors are offsets in FILE.

Streams made with the x-ignore-shared or mapped-ram capability are read as
their configuration section says. A mapped-ram file (QEMU 9.0 and later,
"migrate-set-capabilities mapped-ram" before "migrate file:FILE") keeps each
RAM block's bitmap and pages at fixed places in the file: the tool checks
each block's header, bitmap and pages region against the file, so it needs
a FILE, not stdin. Device sections are found by their footers; see package
internal/vmstream for the method and its limits.`,
		Examples: []string{
			"migrate-analyze /var/tmp/vm.state",
			"migrate-analyze --json /var/tmp/vm.state | jq .RAM.Blocks",
			"migrate-analyze file:/var/tmp/vm.state,offset=0x1000",
			"cat /var/tmp/vm.state | migrate-analyze -",
		},
	}, stderr)
	asJSON := fs.Bool("json", false, "print the report as one JSON object, with \"error\" and \"error_offset\" when malformed")
	if ok, code := cli.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return cli.Fail(stderr, name, errors.New("want exactly one FILE, or - for stdin (see --help)"))
	}
	rep, err := analyze(fs.Arg(0), stdin)
	if rep == nil {
		return cli.Fail(stderr, name, err)
	}
	if *asJSON {
		out := struct {
			*vmstream.Report
			Error       string `json:"error,omitempty"`
			ErrorOffset *int64 `json:"error_offset,omitempty"`
		}{Report: rep}
		var e *vmstream.Error
		if errors.As(err, &e) {
			out.Error, out.ErrorOffset = e.Error(), &e.Offset
		} else if err != nil {
			out.Error = err.Error()
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		rep.WriteText(stdout)
	}
	if err != nil {
		return cli.Fail(stderr, name, err)
	}
	return 0
}

// analyze parses the stream that arg names: "-" is stdin, "file:..." a
// migration URI (path and start offset), as is QEMU's JSON channel of a
// file ({"transport":"file","filename":...,"offset":N}); anything else a
// path. A regular
// file is read with vmstream.ParseFile, so mapped-ram works and offsets
// are file offsets; anything else (stdin, a pipe) with vmstream.Parse. A
// nil Report means the input could not be opened.
func analyze(arg string, stdin io.Reader) (*vmstream.Report, error) {
	if arg == "-" {
		return vmstream.Parse(stdin, nil)
	}
	path, start := arg, int64(0)
	if strings.HasPrefix(arg, "file:") || strings.HasPrefix(strings.TrimLeft(arg, " \t\r\n"), "{") || strings.HasPrefix(strings.TrimLeft(arg, " \t\r\n"), "[") {
		a, err := uri.Parse(arg)
		if err != nil {
			return nil, err
		}
		if a.Transport != uri.File {
			return nil, fmt.Errorf("%s names a %s endpoint: migrate-analyze reads files (a path, file:PATH[,offset=N], or QEMU's JSON file channel)", arg, a.Transport)
		}
		path, start = a.File.Path, a.File.Offset
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if a, perr := uri.Parse(arg); perr == nil && a.Transport != uri.File {
			return nil, fmt.Errorf("%s names a %s endpoint, and no such file exists: migrate-analyze reads files (a path, file:PATH[,offset=N], or QEMU's JSON file channel)", arg, a.Transport)
		}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		if start != 0 {
			return nil, fmt.Errorf("%s is not a regular file, so it cannot be read from offset %d", path, start)
		}
		return vmstream.Parse(f, nil)
	}
	return vmstream.ParseFile(f, start, fi.Size(), nil)
}
