package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/livemig/livemig/examples/internal/proxy"
)

// proxyRole runs migrate-proxy (examples/internal/proxy, what
// examples/migrate-proxy runs) in raw mode, for qemu-tls-proxy.
const proxyRole = "qemu-proxy"

// proxyMain is the proxy role: "qemu-proxy LISTEN-URI TO-URI [OBJECT...]",
// as "migrate-proxy --raw --listen LISTEN-URI --to TO-URI --object OBJECT...".
// It prints "ready ADDRESS" (the canonical URI listened on) and proxies
// until it is killed or ctx ends; its log lines go to stderr.
func proxyMain(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: %s LISTEN-URI TO-URI [OBJECT...]", proxyRole)
	}
	o := &proxy.Options{Listen: args[0], To: args[1], Raw: true}
	for _, spec := range args[2:] {
		if err := o.Objects.Set(spec); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	o.Logf = func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stderr, "migrate-proxy: "+format+"\n", a...)
	}
	o.Listening = func(addr string) { fmt.Fprintf(stdout, "ready %s\n", addr) }
	return proxy.Run(ctx, o)
}
