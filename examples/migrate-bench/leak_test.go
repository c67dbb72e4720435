package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testwait"
)

// checkNoLeaks fails t when, after a run of the tool, a goroutine or a
// child process of this test binary is left behind.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	// Goroutines still ending get until the test binary's -timeout nears.
	d := time.Duration(math.MaxInt64)
	if end := testwait.Deadline(t); !end.IsZero() {
		d = time.Until(end)
	}
	if stacks := leakcheck.Wait(d); len(stacks) > 0 {
		t.Errorf("goroutines left behind:\n%s", strings.Join(stacks, "\n\n"))
	}
	if kids := childPIDs(); len(kids) > 0 {
		t.Errorf("child processes left behind: %v", kids)
	}
}

// childPIDs returns the children of this process that still exist,
// from /proc/self/task/*/children.
func childPIDs() []string {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return []string{fmt.Sprintf("(cannot list: %v)", err)}
	}
	var pids []string
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		if err != nil {
			continue // the thread ended meanwhile
		}
		pids = append(pids, strings.Fields(string(b))...)
	}
	return pids
}
