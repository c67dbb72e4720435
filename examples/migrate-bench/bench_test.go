package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeCases are cases whose runs return fixed samples: they test the
// selection, median and ratio logic, not a transport.
func fakeCases(mbps map[string][]float64) []*benchCase {
	mk := func(name, baseline string, target float64) *benchCase {
		i := 0
		return &benchCase{name: name, group: "g", baseline: baseline,
			target: func(*env) float64 { return target },
			run: func(ctx context.Context, e *env) (*sample, error) {
				v := mbps[name][i%len(mbps[name])]
				i++
				if v < 0 {
					return nil, errors.New("broken")
				}
				// v Mbit/s for 1 GiB.
				el := time.Duration(float64(1<<30) * 8 / (v * 1e6) * float64(time.Second))
				return &sample{Bytes: 1 << 30, Elapsed: el, CPU: time.Second, RSSSrc: int64(v) << 20, RSSDst: 10 << 20}, nil
			}}
	}
	return []*benchCase{mk("base", "", 0), mk("fast", "base", 0.95), mk("slow", "base", 0.95), mk("dep", "fast", 0)}
}

func TestSelectCasesPullsBaselines(t *testing.T) {
	all := fakeCases(nil)
	for _, tc := range []struct{ only, want string }{
		{"", "base,fast,slow,dep"},
		{"dep", "base,fast,dep"},
		{"slow, base", "base,slow"},
		{"g", "base,fast,slow,dep"},
	} {
		got, err := selectCases(all, tc.only)
		if err != nil {
			t.Fatalf("%q: %v", tc.only, err)
		}
		if s := strings.Join(names(got), ","); s != tc.want {
			t.Errorf("--only %q selected %s, want %s", tc.only, s, tc.want)
		}
	}
	if _, err := selectCases(all, "base,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown case: err %v", err)
	}
}

func TestResultsMedianRatioTarget(t *testing.T) {
	cases := fakeCases(map[string][]float64{
		"base": {1000, 3000, 2000},
		"fast": {2100, 1900, 9000},
		"slow": {1000, 1500, 500},
		"dep":  {-1},
	})
	e := &env{nproc: 2, runs: 3, size: 1 << 30}
	var order []string
	outs := runAll(context.Background(), e, cases, 3, func(r, i int, c *benchCase) { order = append(order, c.name) })
	// Interleaved; dep fails on its first run and is not run again.
	if want := []string{"base", "fast", "slow", "dep", "base", "fast", "slow", "base", "fast", "slow"}; !slices.Equal(order, want) {
		t.Fatalf("run order %v, want %v", order, want)
	}
	rs := results(e, outs)
	by := map[string]*result{}
	for _, r := range rs {
		by[r.Case] = r
	}
	near := func(got, want float64) bool { return got > want*0.999 && got < want*1.001 }
	if r := by["base"]; !near(r.Mbps, 2000) || r.Ratio != 0 || r.TargetMet != nil {
		t.Errorf("base: %+v", r)
	}
	if r := by["fast"]; !near(r.Mbps, 2100) || !near(r.BaselineMbps, 2000) || !near(r.Ratio, 1.05) || r.TargetMet == nil || !*r.TargetMet {
		t.Errorf("fast: %+v", r)
	}
	if r := by["slow"]; !near(r.Ratio, 0.5) || r.TargetMet == nil || *r.TargetMet {
		t.Errorf("slow: %+v", r)
	}
	if r := by["fast"]; r.RSSMiBSrc != 9000 || !strings.Contains(r.Note, "RSS over budget") {
		t.Errorf("fast: peak RSS over runs %v MiB, note %q; want 9000 and a budget note", r.RSSMiBSrc, r.Note)
	}
	if r := by["dep"]; r.Error != "broken" || r.Runs != 0 {
		t.Errorf("dep: %+v", r)
	}
	if r := by["base"]; len(r.RunsMbps) != 3 || !near(r.RunsMbps[0], 1000) || !near(r.RunsMbps[1], 3000) || !near(r.RunsMbps[2], 2000) {
		t.Errorf("base: runs_mbps %v, want [1000 3000 2000] in run order", r.RunsMbps)
	}
	if r := by["base"]; !near(r.CPUSPerGiB, 1) {
		t.Errorf("base: cpu_s_per_gib %v, want 1", r.CPUSPerGiB)
	}

	var out bytes.Buffer
	writeTable(&out, e, rs)
	for _, want := range []string{"nproc 2", ">=0.95 MISSED", "dep: error: broken", "FAILED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLatencyRatioIsBaselineOverCase(t *testing.T) {
	c := &benchCase{name: "hs", baseline: "raw", metric: latency}
	b := &benchCase{name: "raw", metric: latency}
	outs := []*outcome{
		{c: b, samples: []*sample{{P50: 2 * time.Millisecond, P99: 3 * time.Millisecond}}},
		{c: c, samples: []*sample{{P50: 4 * time.Millisecond, P99: 5 * time.Millisecond}}},
	}
	rs := results(&env{}, outs)
	if r := rs[1]; r.Ratio != 0.5 || r.P50MS != 4 || r.BaselineP50MS != 2 || r.BaselineP99MS != 3 {
		t.Fatalf("%+v", r)
	}
}
