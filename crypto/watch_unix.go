//go:build unix

package crypto

import (
	"os"
	"syscall"
)

// fileID returns the device and inode of fi, so that a file replaced by
// rename is noticed even when its size and modification time are the
// same (timestamps are coarse on many kernels).
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
