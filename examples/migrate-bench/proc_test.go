package main

import (
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/testwait"
)

// TestChildKilledReported: a child that dies of a signal before printing
// its result (the OOM killer, a crash without output) is reported with
// how it ended, not only as "exited without a result".
func TestChildKilledReported(t *testing.T) {
	noLeaks(t)
	ctx := testwait.Context(t)
	p, err := startProc(ctx, "wire-dst", "/bin/sh", "-c", "kill -KILL $$")
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	_, err = p.line(ctx)
	if err == nil || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("a child killed by SIGKILL: %v", err)
	}
}
