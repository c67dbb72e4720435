package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/examples/internal/demovm"
	"github.com/livemig/livemig/internal/testpki"
)

func TestLive(t *testing.T) {
	rs := runJSON(t, 0, "--only", "live", "--size", "32M", "--runs", "1")
	for _, name := range []string{"live-low", "live-mid", "live-high"} {
		r := rs[name]
		if r == nil {
			t.Fatalf("no result for %s: %v", name, rs)
		}
		if r.Error != "" || r.Runs != 1 {
			t.Errorf("%s: runs %d, error %q", name, r.Runs, r.Error)
		}
		if r.Passes < 1 || r.DowntimeMS <= 0 || r.TotalMS < r.DowntimeMS || r.DirtyRate <= 0 {
			t.Errorf("%s: %d passes, downtime %v ms, total %v ms, dirty rate %d: want passes >= 1, 0 < downtime <= total, a rate",
				name, r.Passes, r.DowntimeMS, r.TotalMS, r.DirtyRate)
		}
		// The wire carries at least the guest's non-zero pages: demovm's
		// Fill leaves every eighth page zero, and a zero page travels as a
		// header only. At a low dirty rate the later passes add little, so
		// the total may stay under the RAM size.
		const nonZero = 32 << 20 / 8 * 7
		if r.SizeBytes < nonZero || r.Mbps <= 0 || r.CPUSPerGiB <= 0 {
			t.Errorf("%s: %d bytes on the wire, %v Mbit/s, %v CPU s/GiB: want >= %d (the non-zero 7/8 of 32 MiB) and positive figures",
				name, r.SizeBytes, r.Mbps, r.CPUSPerGiB, nonZero)
		}
		// Both sides hold the guest RAM.
		if r.RSSMiBSrc < 32 || r.RSSMiBDst < 32 {
			t.Errorf("%s: peak RSS %v MiB (source), %v MiB (destination): want >= the 32 MiB guest", name, r.RSSMiBSrc, r.RSSMiBDst)
		}
		if r.Baseline != "" || r.Ratio != 0 {
			t.Errorf("%s: baseline %q, ratio %v: the live cases have none", name, r.Baseline, r.Ratio)
		}
	}
	if low, high := rs["live-low"], rs["live-high"]; low.DirtyRate >= high.DirtyRate {
		t.Errorf("dirty rates: low %d, high %d", low.DirtyRate, high.DirtyRate)
	}
	checkNoLeaks(t)
}

// TestLiveWrongCA gives the destination certificates of another CA: the
// case must fail naming TLS, with no process left waiting.
func TestLiveWrongCA(t *testing.T) {
	other := t.TempDir()
	if _, err := testpki.Write(other, nil); err != nil {
		t.Fatal(err)
	}
	old := liveServerDir
	liveServerDir = func(*env) string { return filepath.Join(other, "server") }
	t.Cleanup(func() { liveServerDir = old })

	rs := runJSON(t, 1, "--only", "live-low", "--size", "4M", "--runs", "1")
	r := rs["live-low"]
	if r == nil {
		t.Fatalf("no result for live-low: %v", rs)
	}
	if r.Runs != 0 || r.Passes != 0 {
		t.Errorf("runs %d, %d passes: want a failure, not figures", r.Runs, r.Passes)
	}
	if e := strings.ToLower(r.Error); !strings.Contains(e, "tls") || !strings.Contains(e, "certificate") {
		t.Errorf("error %q does not name TLS and the certificate", r.Error)
	}
	checkNoLeaks(t)
}

// TestLiveSampleRefuses checks that a migration whose two sides disagree,
// or whose RAM did not verify, gives no figures.
func TestLiveSampleRefuses(t *testing.T) {
	good := func() (*liveResult, *liveResult) {
		s := &demovm.Summary{Role: "source", RAMBytes: 1 << 20, Bytes: 1 << 20, DurationMS: 10, DowntimeMS: 1, Passes: 2, Converged: true, Checksum: "ab", ChecksumStatus: "verified"}
		d := *s
		d.Role = "destination"
		return &liveResult{Summary: s}, &liveResult{Summary: &d}
	}
	src, dst := good()
	if _, err := liveSample(1, src, dst); err != nil {
		t.Fatalf("a consistent migration: %v", err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(s, d *demovm.Summary)
		want  string
	}{
		{"mismatch", func(s, d *demovm.Summary) { d.ChecksumStatus = "MISMATCH" }, "checksum not verified"},
		{"other RAM", func(s, d *demovm.Summary) { d.Checksum = "cd" }, "checksum not verified"},
		{"passes", func(s, d *demovm.Summary) { d.Passes = 3 }, "passes"},
		{"no passes", func(s, d *demovm.Summary) { s.Passes, d.Passes = 0, 0 }, "passes"},
		{"bytes", func(s, d *demovm.Summary) { d.Bytes-- }, "bytes"},
		{"no downtime", func(s, d *demovm.Summary) { s.DowntimeMS = 0 }, "downtime"},
	} {
		src, dst := good()
		tc.spoil(src.Summary, dst.Summary)
		if _, err := liveSample(1, src, dst); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := liveSample(1, &liveResult{}, &liveResult{}); err == nil {
		t.Error("no summaries: no error")
	}
}
