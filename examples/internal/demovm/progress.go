package demovm

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livemig/livemig/examples/internal/cli"
	"golang.org/x/sys/unix"
)

// counters are updated by the migrating goroutine and read by the progress
// printer.
type counters struct {
	// bytes counts the demo protocol's bytes handed to (source) or taken
	// from (destination) the session. The progress goroutine reads it
	// instead of the Streams' counters, which belong to the session's
	// goroutines while it runs; summaries use those after the session.
	bytes atomic.Int64
	pages atomic.Int64 // pages sent or received
	pass  atomic.Int64
	dirty atomic.Int64 // source: dirty pages left
}

// progress prints a progress line on w: on a terminal one line rewritten
// in place every 100 ms, otherwise one line a second.
type progress struct {
	w     io.Writer
	c     *counters
	total int64 // RAM bytes
	tty   bool
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func startProgress(w io.Writer, c *counters, total int64) *progress {
	p := &progress{w: w, c: c, total: total, tty: isTerminal(w), start: time.Now(), done: make(chan struct{})}
	every := time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.print()
			}
		}
	}()
	return p
}

// line is the progress line: a bar of pages against RAM size, bytes,
// rate, pass and (source) dirty pages.
func (p *progress) line() string {
	b := p.c.bytes.Load()
	el := time.Since(p.start).Seconds()
	frac := float64(p.c.pages.Load()*PageSize) / float64(p.total)
	const width = 20
	n := min(width, int(frac*width))
	s := fmt.Sprintf("[%s%s] %s, %s/s, pass %d", strings.Repeat("#", n), strings.Repeat(".", width-n),
		cli.FormatBytes(float64(b)), cli.FormatBytes(float64(b)/max(el, 1e-3)), p.c.pass.Load())
	if d := p.c.dirty.Load(); d > 0 {
		s += fmt.Sprintf(", %d dirty pages", d)
	}
	return s
}

func (p *progress) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", p.line())
	} else {
		fmt.Fprintln(p.w, p.line())
	}
}

// event prints a one-off line (a pass boundary) between progress lines.
func (p *progress) event(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	if p.tty {
		p.mu.Lock()
		fmt.Fprintf(p.w, "\r\033[K%s\n", p.line())
		p.mu.Unlock()
	}
}

// Summary is what both binaries print at the end (as text, or one JSON
// object with --json).
type Summary struct {
	Role           string  `json:"role"`
	RAMBytes       int64   `json:"ram_bytes"`
	Bytes          int64   `json:"bytes"`
	Pages          int64   `json:"pages"`
	DurationMS     float64 `json:"duration_ms"`
	ThroughputBps  float64 `json:"throughput_bytes_per_sec"`
	DowntimeMS     float64 `json:"downtime_ms"`
	Passes         int     `json:"passes"`
	Channels       int     `json:"channels"`
	Converged      bool    `json:"converged"`
	Checksum       string  `json:"checksum"`
	ChecksumStatus string  `json:"checksum_status"` // "verified" or "MISMATCH"
}

// Write prints s as text or JSON.
func (s *Summary) Write(w io.Writer, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(s)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	conv := ""
	if !s.Converged {
		conv = " (did not converge: final pass forced)"
	}
	fmt.Fprintf(w, "%s summary: %s of RAM, %s on the wire in %.2f s (%s/s) over %d channel(s), %d passes%s, downtime %.1f ms, checksum sha256:%s %s\n",
		s.Role, cli.FormatBytes(float64(s.RAMBytes)), cli.FormatBytes(float64(s.Bytes)), s.DurationMS/1000,
		cli.FormatBytes(s.ThroughputBps), s.Channels, s.Passes, conv, s.DowntimeMS, s.Checksum[:16], s.ChecksumStatus)
}
