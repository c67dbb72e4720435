package channel

import (
	"os/exec"
	"syscall"
	"testing"

	"github.com/livemig/livemig/internal/testwait"
)

// TestGroupAlive: a process group with a running member is alive; once
// the member is dead (reaped, or a zombie) it is not.
func TestGroupAlive(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	if !groupAlive(pgid) {
		t.Error("groupAlive = false for a group with a sleeping member")
	}
	cmd.Process.Kill()
	// A zombie until reaped: not alive.
	testwait.Until(t, "groupAlive false for a group whose only member was killed", func() bool { return !groupAlive(pgid) })
	cmd.Wait()
	if groupAlive(pgid) {
		t.Error("groupAlive = true after the member was reaped")
	}
}
