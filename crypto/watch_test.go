package crypto_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/pskkeys"
	"github.com/livemig/livemig/internal/testpki"
)

// TestWatchPSK: Watch reloads keys.psk when it changes, keeps the old keys
// when the new file is broken (reporting it once), and picks up the repair.
// It runs in a synctest bubble: Watch's ticker and the test's pauses are on
// fake time, which moves only when every goroutine waits, so "ten more
// polls" are ten polls and the 10 s bounds are 2000 polls, however slow
// the machine.
func TestWatchPSK(t *testing.T) { synctest.Test(t, testWatchPSK) }

func testWatchPSK(t *testing.T) {
	dir := t.TempDir()
	k1, k2, k3 := testpki.NewPSK(), testpki.NewPSK(), testpki.NewPSK()
	if err := testpki.WritePSK(dir, map[string][]byte{"qemu": k1}); err != nil {
		t.Fatal(err)
	}
	r := crypto.NewRegistry()
	var mu sync.Mutex
	var logs []string
	r.Logf = func(f string, a ...any) {
		mu.Lock()
		logs = append(logs, strings.TrimSpace(f))
		mu.Unlock()
	}
	if err := r.AddObject("tls-creds-psk,id=p,endpoint=server,dir=" + dir); err != nil {
		t.Fatal(err)
	}
	c, _ := r.Creds("p")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, 5*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	}()
	waitKey := func(want []byte) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if k, err := pskkeys.Key(c, "qemu"); err == nil && bytes.Equal(k, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("Watch did not load the new key")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := testpki.WritePSK(dir, map[string][]byte{"qemu": k2}); err != nil {
		t.Fatal(err)
	}
	waitKey(k2)
	if err := testpki.WriteFileMode(filepath.Join(dir, "keys.psk"), []byte("qemu:not-hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		failed := 0
		for _, l := range logs {
			if strings.Contains(l, "failed") {
				failed++
			}
		}
		mu.Unlock()
		if failed > 0 {
			time.Sleep(50 * time.Millisecond) // ten more polls: no repeated reports
			mu.Lock()
			again := 0
			for _, l := range logs {
				if strings.Contains(l, "failed") {
					again++
				}
			}
			mu.Unlock()
			if again != 1 {
				t.Errorf("failed reload reported %d times, want once", again)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not report the broken file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if k, err := pskkeys.Key(c, "qemu"); err != nil || !bytes.Equal(k, k2) {
		t.Fatalf("after a broken reload the key is %x, %v; want the previous one", k, err)
	}
	if err := testpki.WritePSK(dir, map[string][]byte{"qemu": k3}); err != nil {
		t.Fatal(err)
	}
	waitKey(k3)
}

// TestWatchSameSizeAndTime: a keys.psk replaced by rename with a file of
// the same size and the same modification time (two writes within one
// timestamp tick of a coarse clock, simulated with Chtimes) is still
// reloaded. Fake time, as TestWatchPSK.
func TestWatchSameSizeAndTime(t *testing.T) { synctest.Test(t, testWatchSameSizeAndTime) }

func testWatchSameSizeAndTime(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys.psk")
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k1, k2 := testpki.NewPSK(), testpki.NewPSK()
	if err := testpki.WritePSK(dir, map[string][]byte{"qemu": k1}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	r := crypto.NewRegistry()
	if err := r.AddObject("tls-creds-psk,id=p,endpoint=server,dir=" + dir); err != nil {
		t.Fatal(err)
	}
	c, _ := r.Creds("p")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	if err := testpki.WritePSK(dir, map[string][]byte{"qemu": k2}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if k, err := pskkeys.Key(c, "qemu"); err == nil && bytes.Equal(k, k2) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not reload a keys.psk replaced with one of the same size and modification time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
