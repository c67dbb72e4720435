// Command migrate-bench measures livemig against the raw wire and against
// QEMU, side by side on one machine in one run, and reports every figure as
// a ratio to a baseline measured in the same run, so the figures survive a
// noisy, shared machine.
//
//	go run ./examples/migrate-bench [--size 1G] [--runs 3] [--json] [--only NAME,...]
//
// # Cases
//
// Every throughput case moves --size bytes of 4 KiB pages taken in turn from
// a 16 MiB buffer of pseudo-random bytes (the same seed on both sides); the
// destination checks every page against a CRC-32C table of the buffer, by
// position, so a lost, repeated, reordered or corrupted page fails the run.
// Source and destination are two processes (this binary re-executed as
// "migrate-bench child ..."), so CPU time and peak RSS are each side's own.
// See caseList for the cases and their baselines; `--help` lists them.
//
// The QEMU cases (group "qemu") migrate instead a paused QEMU guest whose
// --size bytes of RAM hold a keystream (internal/qemuvm), from
// qemu-system-x86_64 to another QEMU (whose guest RAM is read back after
// the run and checked page by page) or to a livemig drain that checks
// every page against the keystream; their time runs from the migrate
// command to both sides' completion, QEMU's own query-migrate figures are
// shown beside it, and CPU counts every QEMU, proxy and drain of the case
// (see qemu.go).
//
// # Figures
//
//   - mbps: megabits per second (10^6 bits/s), the unit of QEMU's
//     query-migrate, of the median run: bytes moved over the time from the
//     source's first byte to the destination's last verified byte.
//   - ratio: the case's mbps over its baseline's mbps, both medians of the
//     same run; for handshake latencies, the baseline's p50 over the case's
//     p50, so above 1 is better everywhere.
//   - cpu_s_per_gib: user+system CPU seconds of every process of the case
//     (both sides, and cat or QEMU where they take part) over the transfer,
//     per GiB moved, in the median run.
//   - rss_mib_src, rss_mib_dst: the largest peak resident set of each side
//     over the runs, in MiB. The report flags a side above 64 MiB plus the
//     guest RAM it holds (a QEMU's or the demo VM's).
//   - runs_mbps: every run's mbps in run order, so the spread behind the
//     median shows; target and target_met: the aim for the ratio.
//
// Runs are interleaved (run 1 of every case, then run 2, ...) so that a
// burst of load from elsewhere hits a case and its baseline alike.
//
// # Decisions
//
//   - The raw baselines write the same pages as plain net.Conn (or
//     crypto/tls) writes of 64 contiguous pages (256 KiB, the Stream's
//     batch), the strongest form of a plain write loop: the Stream gets no
//     head start from small writes.
//   - Destinations verify with hardware CRC-32C in every case, baselines
//     included, so verification costs both sides of a ratio alike.
//   - Every destination reads 256 KiB at a time: raw ones with
//     io.ReadFull on the conn, Stream ones with GetBuffer (which reads
//     that size straight from the channel, past the Stream's buffer),
//     the session one with DestinationSession.ReadBuffer (each frame's
//     payload lent without a copy; pages arrive whole, since a session
//     never cuts a PutBufferNoCopy page across frames). The session's
//     source sends with SourceSession.PutBufferNoCopy, as the Stream's
//     does with PutBufferNoCopy.
//   - The source's 16 MiB pattern is its guest RAM and, like a VMM's (and
//     the demo VM's), is mapped outside the Go heap: the garbage collector
//     does not double it into the heap goal. A side that allocates more
//     than 16 MiB per GiB moved says so in its note (pion/dtls does).
//   - MIGRATE_BENCH_CPUPROFILE=DIR makes each wire child write a CPU
//     profile of its data phase to DIR/ROLE-CASE.pprof.
package main

import (
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(childMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
