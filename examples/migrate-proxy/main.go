// Command migrate-proxy forwards migration connections from one address to
// another, adding or removing TLS on the way (QEMU to QEMU through a TLS
// hop, or saving a QEMU stream with --to file:PATH). Run it with --help for
// its flags and examples.
package main

import (
	"os"

	"github.com/livemig/livemig/examples/internal/proxy"
)

func main() { os.Exit(proxy.Main(os.Args[1:], os.Stdout, os.Stderr)) }
