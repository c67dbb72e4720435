// Command migrate-source runs a demo VM and migrates it live to
// migrate-dest over any livemig transport, TLS included. Run it with --help
// for its flags and examples.
package main

import (
	"os"

	"github.com/livemig/livemig/examples/internal/demovm"
)

func main() { os.Exit(demovm.SourceMain(os.Args[1:], os.Stdout, os.Stderr)) }
