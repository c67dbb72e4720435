package leakcheck

import (
	"strings"
	"testing"
	"time"
)

func TestWaitSeesLeakAndItsEnd(t *testing.T) {
	stop := make(chan struct{})
	go func() { <-stop }()
	leaked := Wait(100 * time.Millisecond)
	if len(leaked) != 1 || !strings.Contains(leaked[0], "TestWaitSeesLeakAndItsEnd") {
		t.Fatalf("Wait = %q, want the one goroutine this test started", leaked)
	}
	close(stop)
	if leaked := Wait(2 * time.Second); len(leaked) != 0 {
		t.Fatalf("after the goroutine ended, Wait = %q, want none", leaked)
	}
}
