//go:build !linux

package channel

import "syscall"

// groupAlive reports whether process group pgid has a member (zombies
// included: without /proc they cannot be told apart).
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) != syscall.ESRCH
}
