package main

import (
	"os"
	"strings"
	"testing"
)

// noLeaks makes t fail if goroutines or child processes outlive it
// (checkNoLeaks, leak_test.go). Call it first, so its check runs after
// every other cleanup.
func noLeaks(t *testing.T) {
	t.Cleanup(func() { checkNoLeaks(t) })
}

// wireSize is what the tests move per case: race-built children are slow.
const wireSize = 8 << 20

// TestWire runs every wire case once and checks the figures each must
// have: throughput, a ratio where there is a baseline, CPU, both sides'
// RSS, and exactly --size bytes verified. A case may be skipped only for
// the reasons this machine can legitimately have.
func TestWire(t *testing.T) {
	noLeaks(t)
	rs := runJSON(t, 0, "--only", "wire", "--size", "8M", "--runs", "1")
	for _, w := range wireKinds() {
		r := rs[w.name]
		if r == nil {
			t.Errorf("%s: no result", w.name)
			continue
		}
		if r.Skipped != "" {
			switch {
			case w.api == "zerocopy" && strings.Contains(r.Skipped, "SO_ZEROCOPY"):
			case w.transport == "exec" && strings.Contains(r.Skipped, "needs"):
			default:
				t.Errorf("%s: skipped: %s", w.name, r.Skipped)
			}
			t.Logf("%s: skipped: %s", w.name, r.Skipped)
			continue
		}
		if r.Error != "" {
			t.Errorf("%s: %s", w.name, r.Error)
			continue
		}
		if r.Mbps <= 0 || r.CPUSPerGiB <= 0 || r.RSSMiBSrc <= 0 || r.RSSMiBDst <= 0 {
			t.Errorf("%s: mbps %v, cpu_s_per_gib %v, rss_mib_src %v, rss_mib_dst %v: want all positive", w.name, r.Mbps, r.CPUSPerGiB, r.RSSMiBSrc, r.RSSMiBDst)
		}
		if r.SizeBytes != wireSize {
			t.Errorf("%s: %d bytes verified, want %d", w.name, r.SizeBytes, wireSize)
		}
		if r.Baseline != w.baseline {
			t.Errorf("%s: baseline %q, want %q", w.name, r.Baseline, w.baseline)
		}
		if w.baseline != "" && (r.Ratio <= 0 || r.BaselineMbps <= 0) {
			t.Errorf("%s: ratio %v, baseline_mbps %v: want both positive", w.name, r.Ratio, r.BaselineMbps)
		}
		switch {
		case w.security == "tls" && !strings.Contains(r.Note, "TLS 1.3"):
			t.Errorf("%s: note %q does not name the negotiated TLS version and suite", w.name, r.Note)
		case w.api == "zerocopy" && !strings.Contains(r.Note, "MSG_ZEROCOPY: the kernel completed"):
			t.Errorf("%s: note %q does not report the kernel's zero-copy completions", w.name, r.Note)
		}
		t.Logf("%s: %.0f Mbit/s, ratio %.2f, %.2f CPU s/GiB, RSS %.0f/%.0f MiB; %s", w.name, r.Mbps, r.Ratio, r.CPUSPerGiB, r.RSSMiBSrc, r.RSSMiBDst, r.Note)
	}
}

// TestWireCorruption flips one byte of one page on the wire in every wire
// case and checks that the destination's verification fails the run,
// naming the case and the page: a verification that cannot fail would
// make every figure worthless.
func TestWireCorruption(t *testing.T) {
	noLeaks(t)
	const page = 1000 // inside the 8 MiB, away from the ends
	testCorruptPage.Store(page)
	defer testCorruptPage.Store(-1)
	rs := runJSON(t, 1, "--only", "wire", "--size", "8M", "--runs", "1")
	for _, w := range wireKinds() {
		r := rs[w.name]
		switch {
		case r == nil:
			t.Errorf("%s: no result", w.name)
		case r.Skipped != "":
			t.Logf("%s: skipped: %s", w.name, r.Skipped)
		case r.Error == "":
			t.Errorf("%s: a corrupted page 1000 passed verification", w.name)
		case !strings.Contains(r.Error, w.name+": page 1000 ") || !strings.Contains(r.Error, "does not match the pattern"):
			t.Errorf("%s: error %q does not say that page 1000 does not match", w.name, r.Error)
		}
	}
}

// TestWireLength checks that a stream one page short, or one page long,
// fails the run with an error naming the case and the page, through a
// raw socket, a Stream and a Session.
func TestWireLength(t *testing.T) {
	noLeaks(t)
	for _, tc := range []struct {
		delta int64
		want  string
	}{
		{-1, "short stream: it ended after 8384512 of 8388608 bytes, inside or before page 2047"},
		{+1, "extra bytes after the last page (page 2047)"},
	} {
		testPageDelta.Store(tc.delta)
		rs := runJSON(t, 1, "--only", "unix-raw,unix-stream,tls-stream-2ch", "--size", "8M", "--runs", "1")
		testPageDelta.Store(0)
		for _, name := range []string{"unix-raw", "unix-stream", "tls-stream", "tls-stream-2ch"} {
			r := rs[name]
			switch {
			case r == nil:
				t.Errorf("delta %+d: %s: no result", tc.delta, name)
			case !strings.Contains(r.Error, name+": "+tc.want):
				t.Errorf("delta %+d: %s: error %q, want it to contain %q", tc.delta, name, r.Error, name+": "+tc.want)
			}
		}
	}
}

// TestWireNoLeftovers checks that a run leaves nothing in the temporary
// directory: sockets, FIFOs and the PKI live in one directory, removed at
// the end.
func TestWireNoLeftovers(t *testing.T) {
	noLeaks(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	runJSON(t, 0, "--only", "unix-raw,exec", "--size", "4M", "--runs", "1")
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range left {
		t.Errorf("left behind in the temporary directory: %s", f.Name())
	}
}
