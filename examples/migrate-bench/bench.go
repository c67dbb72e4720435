package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// metric is what a case measures, and so how its ratio is formed.
type metric int

const (
	throughput metric = iota // bytes per second; ratio = case / baseline
	latency                  // handshake p50; ratio = baseline / case
)

// benchCase is one row of the table.
type benchCase struct {
	name     string
	group    string // "wire", "qemu", "handshake" or "live": --only accepts it too
	baseline string // the case this one is divided by; "" for a baseline
	about    string // one line for --help
	metric   metric
	// target is the smallest ratio the project aims for (0: none); it may
	// depend on the machine, so it is a function of the environment.
	target func(e *env) float64
	// skip returns why the case cannot run on this machine, or "".
	skip func(e *env) string
	// run measures the case once.
	run func(ctx context.Context, e *env) (*sample, error)
}

// sample is the outcome of one run of a case.
type sample struct {
	Bytes   int64         // payload bytes moved and verified
	Elapsed time.Duration // source's first byte to destination's last verified byte
	CPU     time.Duration // user+system CPU of every process of the case over the transfer
	RSSSrc  int64         // peak resident set of the source side, bytes
	RSSDst  int64         // peak resident set of the destination side, bytes
	// RAMSrc and RAMDst are the guest RAM each side holds (a QEMU or the
	// demo VM), which the RSS budget allows on top of rssBudget.
	RAMSrc, RAMDst int64

	// Latency cases.
	P50, P99 time.Duration

	// Live cases.
	Passes    int
	Total     time.Duration // whole migration
	Downtime  time.Duration
	DirtyRate int // pages per second

	// QEMU cases: what QEMU's query-migrate says, next to the wall clock.
	QEMUTotal time.Duration
	QEMUMbps  float64

	Note string // one short remark for the table, such as a fallback taken
}

// mbps returns s's throughput in megabits per second.
func (s *sample) mbps() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Bytes) * 8 / s.Elapsed.Seconds() / 1e6
}

// score is the figure runs are ranked by and ratios are formed from:
// larger is better for both metrics.
func (c *benchCase) score(s *sample) float64 {
	if c.metric == latency {
		if s.P50 <= 0 {
			return 0
		}
		return 1 / s.P50.Seconds()
	}
	return s.mbps()
}

// caseList returns every case in table order: each baseline before the
// cases measured against it.
func caseList() []*benchCase {
	var cs []*benchCase
	cs = append(cs, wireCases()...)
	cs = append(cs, qemuCases()...)
	cs = append(cs, handshakeCases()...)
	cs = append(cs, liveCases()...)
	return cs
}

// selectCases returns the cases that --only names (all when only is
// empty), with the baselines they need, in table order. A name may be a
// case or a group.
func selectCases(all []*benchCase, only string) ([]*benchCase, error) {
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	byName := map[string]*benchCase{}
	groups := map[string]bool{}
	for _, c := range all {
		byName[c.name] = c
		groups[c.group] = true
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
		case byName[n] != nil:
			want[n] = true
		case groups[n]:
			for _, c := range all {
				if c.group == n {
					want[c.name] = true
				}
			}
		default:
			return nil, fmt.Errorf("--only: unknown case %q (cases: %s; groups: wire, qemu, handshake, live)", n, strings.Join(names(all), ", "))
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("--only %q names no case (cases: %s; groups: wire, qemu, handshake, live)", only, strings.Join(names(all), ", "))
	}
	// Pull in baselines, transitively.
	for changed := true; changed; {
		changed = false
		for n := range want {
			if b := byName[n].baseline; b != "" && !want[b] {
				want[b] = true
				changed = true
			}
		}
	}
	var out []*benchCase
	for _, c := range all {
		if want[c.name] {
			out = append(out, c)
		}
	}
	return out, nil
}

// names returns the names of cs, in order.
func names(cs []*benchCase) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.name)
	}
	return s
}

// outcome collects the runs of one case.
type outcome struct {
	c       *benchCase
	skipped string
	err     error
	samples []*sample
}

// median returns the sample of median score (the lower middle one for an
// even count), or nil when there is none.
func (o *outcome) median() *sample {
	if len(o.samples) == 0 {
		return nil
	}
	s := slices.Clone(o.samples)
	slices.SortFunc(s, func(a, b *sample) int {
		sa, sb := o.c.score(a), o.c.score(b)
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	return s[(len(s)-1)/2]
}

// runAll runs every case runs times, interleaved, calling progress before
// each run. A case that fails once is not run again.
func runAll(ctx context.Context, e *env, cases []*benchCase, runs int, progress func(run, i int, c *benchCase)) []*outcome {
	out := make([]*outcome, len(cases))
	for i, c := range cases {
		out[i] = &outcome{c: c}
		if c.skip != nil {
			out[i].skipped = c.skip(e)
		}
	}
	for r := 1; r <= runs; r++ {
		for i, c := range cases {
			o := out[i]
			if o.skipped != "" || o.err != nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				o.err = err
				continue
			}
			progress(r, i, c)
			s, err := c.run(ctx, e)
			if err != nil {
				o.err = err
				continue
			}
			o.samples = append(o.samples, s)
		}
	}
	return out
}
