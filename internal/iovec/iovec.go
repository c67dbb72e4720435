// Package iovec holds the one rule, shared by package channel (the socket
// writev path and TLS.WriteBuffers) and package migration (the Stream's
// iov list), for when two byte slices can be written as one iovec: the
// second must start exactly where the first ends, inside the first's
// capacity. Consecutive guest pages of one RAM buffer pass it, so a run of
// them becomes one large iovec (one writev entry, or one slice that
// crypto/tls can cut into full records without a copy), as QEMU's
// add_to_iovec merges them.
//
// The capacity condition is what makes merging safe: a[:len(a)+len(b)] is
// then a valid reslice of a's own backing array and covers exactly the
// bytes of a and then of b. Two slices of different arrays never pass,
// even when the second array happens to follow the first in memory,
// because a's capacity ends with its array; nor does a slice capped by a
// full slice expression (a[i:j:j]) whose owner meant it to end there.
package iovec

// Continues reports whether b starts where a ends in memory, within a's
// capacity, so that a[:len(a)+len(b)] holds the bytes of a followed by
// those of b. It is false when either slice is empty (an empty slice has
// no address to compare, and there is nothing to gain by merging it).
func Continues(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && cap(a)-len(a) >= len(b) && &a[:len(a)+1][len(a)] == &b[0]
}
