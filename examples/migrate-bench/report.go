package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// result is one case as --json prints it: the fields the issue names
// first, then the figures particular to some cases (omitted when zero).
type result struct {
	Case         string  `json:"case"`
	Baseline     string  `json:"baseline"`
	Mbps         float64 `json:"mbps"`
	BaselineMbps float64 `json:"baseline_mbps"`
	Ratio        float64 `json:"ratio"`
	CPUSPerGiB   float64 `json:"cpu_s_per_gib"`
	RSSMiBSrc    float64 `json:"rss_mib_src"`
	RSSMiBDst    float64 `json:"rss_mib_dst"`

	Target    float64   `json:"target,omitempty"`     // smallest ratio aimed for
	TargetMet *bool     `json:"target_met,omitempty"` // nil when there is no target or no ratio
	Runs      int       `json:"runs"`                 // runs measured
	RunsMbps  []float64 `json:"runs_mbps,omitempty"`  // every run's mbps, in run order
	SizeBytes int64     `json:"size_bytes,omitempty"` // bytes per run
	Nproc     int       `json:"nproc"`

	P50MS         float64 `json:"p50_ms,omitempty"`
	P99MS         float64 `json:"p99_ms,omitempty"`
	BaselineP50MS float64 `json:"baseline_p50_ms,omitempty"`
	BaselineP99MS float64 `json:"baseline_p99_ms,omitempty"`

	Passes     int     `json:"passes,omitempty"`
	TotalMS    float64 `json:"total_ms,omitempty"`
	DowntimeMS float64 `json:"downtime_ms,omitempty"`
	DirtyRate  int     `json:"dirty_rate_pages_per_s,omitempty"`

	QEMUTotalMS float64 `json:"qemu_total_ms,omitempty"`
	QEMUMbps    float64 `json:"qemu_mbps,omitempty"`

	QEMU    string `json:"qemu,omitempty"` // the QEMU of a qemu-group case: "qemu-10.0.2"
	Note    string `json:"note,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// rssBudget is the peak RSS a side may use on top of the guest RAM it
// holds, whatever --size: the target.
const rssBudget = 64 << 20

// results turns outcomes into results, forming ratios against baselines.
func results(e *env, outs []*outcome) []*result {
	byName := map[string]*outcome{}
	for _, o := range outs {
		byName[o.c.name] = o
	}
	var rs []*result
	for _, o := range outs {
		r := &result{Case: o.c.name, Baseline: o.c.baseline, Runs: len(o.samples), Nproc: e.nproc, Skipped: o.skipped}
		if o.err != nil {
			r.Error = o.err.Error()
		}
		if o.c.group == "qemu" && e.qemu.Path != "" {
			r.QEMU = e.qemu.String()
		}
		if o.c.target != nil {
			r.Target = o.c.target(e)
		}
		m := o.median()
		if m != nil {
			fill(r, m)
			var over []string
			for _, s := range o.samples { // peak over the runs
				if o.c.metric == throughput {
					r.RunsMbps = append(r.RunsMbps, round(s.mbps(), 1))
				}
				r.RSSMiBSrc = max(r.RSSMiBSrc, mib(s.RSSSrc))
				r.RSSMiBDst = max(r.RSSMiBDst, mib(s.RSSDst))
				if s.RSSSrc > rssBudget+s.RAMSrc {
					over = append(over, fmt.Sprintf("source peak RSS %.0f MiB", mib(s.RSSSrc)))
				}
				if s.RSSDst > rssBudget+s.RAMDst {
					over = append(over, fmt.Sprintf("destination peak RSS %.0f MiB", mib(s.RSSDst)))
				}
			}
			if len(over) > 0 {
				r.Note = strings.TrimPrefix(r.Note+"; ", "; ") + fmt.Sprintf("RSS over budget (%d MiB + guest RAM): %s", rssBudget>>20, strings.Join(slices.Compact(over), ", "))
			}
		}
		if b := byName[o.c.baseline]; b != nil && m != nil {
			if bm := b.median(); bm != nil {
				r.BaselineMbps = round(bm.mbps(), 1)
				if o.c.metric == latency {
					r.BaselineP50MS = ms(bm.P50)
					r.BaselineP99MS = ms(bm.P99)
				}
				if bs, s := o.c.score(bm), o.c.score(m); bs > 0 && s > 0 {
					r.Ratio = round(s/bs, 3)
					if r.Target > 0 {
						met := r.Ratio >= r.Target
						r.TargetMet = &met
					}
				}
			}
		}
		rs = append(rs, r)
	}
	return rs
}

// fill copies the figures of s, a case's median run, into r.
func fill(r *result, s *sample) {
	r.Mbps = round(s.mbps(), 1)
	r.SizeBytes = s.Bytes
	if s.Bytes > 0 {
		r.CPUSPerGiB = round(s.CPU.Seconds()/(float64(s.Bytes)/(1<<30)), 3)
	}
	r.P50MS, r.P99MS = ms(s.P50), ms(s.P99)
	r.Passes, r.TotalMS, r.DowntimeMS, r.DirtyRate = s.Passes, ms(s.Total), ms(s.Downtime), s.DirtyRate
	r.QEMUTotalMS, r.QEMUMbps = ms(s.QEMUTotal), round(s.QEMUMbps, 1)
	r.Note = s.Note
}

// writeJSON prints one JSON object per line, one line per case.
func writeJSON(w io.Writer, rs []*result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// writeTable prints the results for people: a header naming the machine,
// one row per case, and the notes, skips and errors underneath.
func writeTable(w io.Writer, e *env, rs []*result) {
	fmt.Fprintf(w, "migrate-bench: %s per run, %d run(s), median shown; nproc %d, %s, %s",
		formatSize(e.size), e.runs, e.nproc, e.cpuModel, e.goVersion)
	if e.qemu.Path != "" {
		fmt.Fprintf(w, ", %s (%s)", e.qemu, e.qemu.Path)
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tbaseline\tMbit/s\tbaseline Mbit/s\tratio\ttarget\tCPU s/GiB\tRSS src MiB\tRSS dst MiB\t")
	var notes []string
	for _, r := range rs {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t\n", r.Case, r.Baseline)
			notes = append(notes, fmt.Sprintf("%s: skipped: %s", r.Case, r.Skipped))
			continue
		case r.Runs == 0:
			fmt.Fprintf(tw, "%s\t%s\tFAILED\t-\t-\t-\t-\t-\t-\t\n", r.Case, r.Baseline)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t\n", r.Case, dash(r.Baseline),
				num(r.Mbps, 0), num(r.BaselineMbps, 0), num(r.Ratio, 2), target(r), num(r.CPUSPerGiB, 2), r.RSSMiBSrc, r.RSSMiBDst)
		}
		var extra []string
		if r.P50MS > 0 {
			extra = append(extra, fmt.Sprintf("p50 %.3f ms, p99 %.3f ms", r.P50MS, r.P99MS))
			if r.BaselineP50MS > 0 {
				extra = append(extra, fmt.Sprintf("baseline p50 %.3f ms, p99 %.3f ms", r.BaselineP50MS, r.BaselineP99MS))
			}
		}
		if r.DirtyRate > 0 || r.Passes > 0 {
			extra = append(extra, fmt.Sprintf("dirty rate %d pages/s, %d passes, total %.0f ms, downtime %.1f ms", r.DirtyRate, r.Passes, r.TotalMS, r.DowntimeMS))
		}
		if r.QEMUTotalMS > 0 {
			extra = append(extra, fmt.Sprintf("QEMU says: total-time %.0f ms, mbps %.0f", r.QEMUTotalMS, r.QEMUMbps))
		}
		if r.Note != "" {
			extra = append(extra, r.Note)
		}
		if r.Error != "" {
			extra = append(extra, "error: "+r.Error)
		}
		if len(extra) > 0 {
			notes = append(notes, r.Case+": "+strings.Join(extra, "; "))
		}
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
	fmt.Fprintln(w, "\nMbit/s: 10^6 bits per second of the median run; ratio: case over baseline (for handshake, baseline p50 over case p50), above 1 is better.")
}

// target returns r's target for the table: ">=T", with MISSED when
// the ratio fell short, or "-" when there is none.
func target(r *result) string {
	if r.Target == 0 {
		return "-"
	}
	s := fmt.Sprintf(">=%.2f", r.Target)
	if r.TargetMet != nil && !*r.TargetMet {
		s += " MISSED"
	}
	return s
}

// dash returns s, or "-" when it is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// num formats v with prec decimals, or "-" when it is zero (not measured).
func num(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// mib returns b bytes in MiB, to one decimal.
func mib(b int64) float64 { return round(float64(b)/(1<<20), 1) }

// ms returns d in milliseconds, to three decimals.
func ms(d interface{ Seconds() float64 }) float64 { return round(d.Seconds()*1000, 3) }

// round rounds v, not negative, to prec decimals.
func round(v float64, prec int) float64 {
	p := 1.0
	for range prec {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// formatSize returns n bytes in GiB or MiB when it is a whole number of
// them, else in bytes.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
