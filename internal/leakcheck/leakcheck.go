// Package leakcheck fails a test binary that leaves goroutines behind.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// After every test has run, Main waits for the goroutines started by the
// tests to end, then prints the stacks of those still running and exits
// non-zero. It waits until a tenth of the test binary's -timeout before
// that expires (at least five seconds; with -timeout 0, for as long as it
// takes): a busy machine still ending goroutines makes the run longer, not
// failed, and a leak is reported before go test's own panic.
package leakcheck

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// M is the part of *testing.M that Main uses.
type M interface{ Run() int }

// Main runs the tests and then the leak check, and exits.
func Main(m M) {
	start := time.Now()
	code := m.Run()
	if code == 0 {
		if leaked := Wait(patience(start)); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) still running after the tests:\n\n%s\n",
				len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// patience is how long Main waits for goroutines to end, for a test
// binary started at start (see Main).
func patience(start time.Time) time.Duration {
	const least = 5 * time.Second
	f := flag.Lookup("test.timeout")
	if f == nil {
		return least
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return least
	}
	timeout, ok := g.Get().(time.Duration)
	if !ok {
		return least
	}
	if timeout <= 0 {
		return math.MaxInt64
	}
	return max(least, time.Until(start.Add(timeout-timeout/10)))
}

// Wait polls until no goroutine other than the test framework's and the
// runtime's is running, or d passes; it returns the stacks still running.
func Wait(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		leaked := interesting()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ignoredCreators mark goroutines that belong to the
// runtime, the testing package or the standard library's background work.
var ignoredCreators = []string{
	"created by runtime.",
	"created by testing.",
	"created by os/signal.",
	"\nmain.main()", // the test binary's main goroutine
}

// interesting returns the stacks of every goroutine except the caller's and
// those made by ignoredCreators.
func interesting() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	blocks := strings.Split(string(buf), "\n\n")
	var out []string
	for _, g := range blocks[1:] { // blocks[0] is this goroutine
		stack := strings.TrimSpace(g)
		if stack != "" && !createdByIgnored(stack) {
			out = append(out, stack)
		}
	}
	sort.Strings(out)
	return out
}

func createdByIgnored(stack string) bool {
	for _, c := range ignoredCreators {
		if strings.Contains(stack, c) {
			return true
		}
	}
	return false
}
