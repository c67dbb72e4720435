// Command migrate-analyze reads a QEMU migration stream (magic 0x5145564D,
// version 3) from a file or stdin, lists its sections and configuration,
// checks that it ends in EOF, and reports the first malformed byte with its
// offset. Run it with --help for its flags and examples.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/internal/vmstream"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const name = "migrate-analyze"
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "migrate-analyze [--json] FILE|-",
		Description: `Reads a QEMU migration stream (as saved by QEMU's "migrate exec:cat > FILE"
or by "migrate-proxy --to file:FILE"; - reads stdin), lists its sections
(type, id, name, instance, version, size) and the configuration section,
decodes the RAM records, checks that it ends in EOF, and reports the first
malformed byte with its offset. Device sections are found by their footers;
see package internal/vmstream for the method and its limits. Exits 0 for a
well-formed stream, 1 otherwise.`,
		Examples: []string{
			"migrate-analyze /var/tmp/vm.state",
			"migrate-analyze --json /var/tmp/vm.state | jq .Sections",
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
	var r io.Reader = stdin
	if p := fs.Arg(0); p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return cli.Fail(stderr, name, err)
		}
		defer f.Close()
		r = f
	}
	rep, err := vmstream.Parse(r, nil)
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
