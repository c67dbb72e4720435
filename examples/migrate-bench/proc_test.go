package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestChildKilledReported: a child that dies of a signal before printing
// its result (the OOM killer, a crash without output) is reported with
// how it ended, not only as "exited without a result".
func TestChildKilledReported(t *testing.T) {
	noLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
