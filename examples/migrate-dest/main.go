// Command migrate-dest receives one live migration of the demo VM from
// migrate-source and verifies it. Run it with --help for its flags and
// examples.
package main

import (
	"os"

	"github.com/livemig/livemig/examples/internal/demovm"
)

func main() { os.Exit(demovm.DestMain(os.Args[1:], os.Stdout, os.Stderr)) }
