package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/testpki"
)

// fewHandshakes makes the handshake cases do n handshakes per run for the
// rest of t: race-built children are slow.
func fewHandshakes(t *testing.T, n int) {
	old := handshakeCount
	handshakeCount = n
	t.Cleanup(func() { handshakeCount = old })
}

// cpuPerHandshake is how runHandshakes' note spells the CPU cost.
var cpuPerHandshake = regexp.MustCompile(`CPU ([0-9.]+) ms per handshake`)

func TestHandshake(t *testing.T) {
	fewHandshakes(t, 20)
	rs := runJSON(t, 0, "--only", "handshake", "--runs", "1")
	for _, name := range []string{"handshake-tls-raw", "handshake"} {
		r := rs[name]
		if r == nil {
			t.Fatalf("no result for %s: %v", name, rs)
		}
		if r.Error != "" || r.Runs != 1 {
			t.Errorf("%s: runs %d, error %q", name, r.Runs, r.Error)
		}
		if r.P50MS <= 0 || r.P99MS < r.P50MS {
			t.Errorf("%s: p50 %v ms, p99 %v ms: want 0 < p50 <= p99", name, r.P50MS, r.P99MS)
		}
		if r.RSSMiBSrc <= 0 || r.RSSMiBDst <= 0 {
			t.Errorf("%s: peak RSS %v MiB (client), %v MiB (server): want both positive", name, r.RSSMiBSrc, r.RSSMiBDst)
		}
		m := cpuPerHandshake.FindStringSubmatch(r.Note)
		if m == nil {
			t.Errorf("%s: note %q gives no CPU per handshake", name, r.Note)
		} else if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
			t.Errorf("%s: CPU %v ms per handshake, want positive (note %q)", name, v, r.Note)
		}
		if !strings.Contains(r.Note, "20 handshakes") {
			t.Errorf("%s: note %q does not count 20 handshakes", name, r.Note)
		}
	}
	r := rs["handshake"]
	if r.Baseline != "handshake-tls-raw" || r.Ratio <= 0 || r.BaselineP50MS <= 0 || r.BaselineP99MS < r.BaselineP50MS {
		t.Errorf("handshake: baseline %q, ratio %v, baseline p50 %v ms, p99 %v ms", r.Baseline, r.Ratio, r.BaselineP50MS, r.BaselineP99MS)
	}
	if want := rs["handshake-tls-raw"].P50MS / r.P50MS; r.Ratio < want*0.99 || r.Ratio > want*1.01 {
		t.Errorf("handshake: ratio %v, want baseline p50 / p50 = %v", r.Ratio, want)
	}
	checkNoLeaks(t)
}

// TestHandshakeWrongCA gives both handshake servers certificates of
// another CA: every case must fail, naming TLS and the certificate, rather
// than report a latency.
func TestHandshakeWrongCA(t *testing.T) {
	fewHandshakes(t, 5)
	other := t.TempDir()
	if _, err := testpki.Write(other, nil); err != nil {
		t.Fatal(err)
	}
	old := handshakeServerDir
	handshakeServerDir = func(*env) string { return filepath.Join(other, "server") }
	t.Cleanup(func() { handshakeServerDir = old })

	rs := runJSON(t, 1, "--only", "handshake", "--runs", "1")
	for _, name := range []string{"handshake-tls-raw", "handshake"} {
		r := rs[name]
		if r == nil {
			t.Fatalf("no result for %s: %v", name, rs)
		}
		if r.Runs != 0 || r.P50MS != 0 || r.Ratio != 0 {
			t.Errorf("%s: runs %d, p50 %v ms, ratio %v: want a failure, not figures", name, r.Runs, r.P50MS, r.Ratio)
		}
		if e := strings.ToLower(r.Error); !strings.Contains(e, "tls") || !strings.Contains(e, "certificate") {
			t.Errorf("%s: error %q does not name TLS and the certificate", name, r.Error)
		}
	}
	checkNoLeaks(t)
}
