package main

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"golang.org/x/sys/unix"
)

// Page and pattern sizes. Page i of every stream is pattern page
// i mod patternPages.
const (
	pageSize     = 4096
	patternPages = 4096                    // 16 MiB of pattern
	patternSize  = patternPages * pageSize // bytes
	chunkSize    = 64 * pageSize           // the raw baselines' write and every destination's read
)

// patternSeed seeds the pattern on both sides.
var patternSeed = [32]byte{'l', 'i', 'v', 'e', 'm', 'i', 'g', ' ', 'm', 'i', 'g', 'r', 'a', 't', 'e', '-', 'b', 'e', 'n', 'c', 'h'}

// newPattern returns the 16 MiB pattern buffer, every byte written, and
// the function that unmaps it. It is the source's guest RAM, and like the
// RAM of a VMM (and of the demo VM) it is mapped outside the Go heap: the
// garbage collector neither scans it nor sizes its heap goal on it, so a
// side that allocates per record (pion/dtls) does not see its heap goal
// doubled by 16 MiB of guest memory.
func newPattern() ([]byte, func(), error) {
	b, err := unix.Mmap(-1, 0, patternSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping the %d MiB pattern: %w", patternSize>>20, err)
	}
	rand.NewChaCha8(patternSeed).Read(b)
	return b, func() { unix.Munmap(b) }, nil
}

// castagnoli is the CRC-32C table; hash/crc32 uses the CPU's instruction
// for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// verifier checks received pages against the pattern by position.
type verifier struct {
	name string               // the case, for errors
	crcs [patternPages]uint32 // CRC-32C of each pattern page
	page int64                // index of the next page to check
	// feed's page in progress: its CRC so far and its length
	crc     uint32
	partial int
}

// newVerifier computes the CRC-32C of every pattern page, generating the
// pattern one page at a time so the destination never holds all of it.
func newVerifier(name string) *verifier {
	v := &verifier{name: name}
	r := rand.NewChaCha8(patternSeed)
	var page [pageSize]byte
	for i := range v.crcs {
		r.Read(page[:])
		v.crcs[i] = crc32.Checksum(page[:], castagnoli)
	}
	return v
}

// check verifies b, a whole number of pages that follow the pages checked
// so far.
func (v *verifier) check(b []byte) error {
	if len(b)%pageSize != 0 {
		return fmt.Errorf("%s: internal error: %d bytes to check are not whole pages", v.name, len(b))
	}
	for off := 0; off < len(b); off += pageSize {
		want := v.crcs[v.page%patternPages]
		if got := crc32.Checksum(b[off:off+pageSize], castagnoli); got != want {
			return v.mismatch(got, want)
		}
		v.page++
	}
	return nil
}

// feed checks b, the next bytes of the stream, which may start or end
// inside a page: a raw read or a Stream's GetBuffer ends where the kernel
// says. (A session keeps pages whole, but the same verifier serves all.)
func (v *verifier) feed(b []byte) error {
	for len(b) > 0 {
		if v.partial == 0 && len(b) >= pageSize {
			whole := len(b) - len(b)%pageSize
			if err := v.check(b[:whole]); err != nil {
				return err
			}
			b = b[whole:]
			continue
		}
		c := min(len(b), pageSize-v.partial)
		v.crc = crc32.Update(v.crc, castagnoli, b[:c])
		v.partial += c
		b = b[c:]
		if v.partial == pageSize {
			if want := v.crcs[v.page%patternPages]; v.crc != want {
				return v.mismatch(v.crc, want)
			}
			v.crc, v.partial = 0, 0
			v.page++
		}
	}
	return nil
}

// mismatch is the error for the page being checked, whose CRC-32C is got.
func (v *verifier) mismatch(got, want uint32) error {
	return fmt.Errorf("%s: page %d (byte offset %d) does not match the pattern: CRC-32C %08x, want %08x", v.name, v.page, v.page*pageSize, got, want)
}

// short is the error for a stream that ended after got of want bytes.
func (v *verifier) short(got, want int64, err error) error {
	return fmt.Errorf("%s: short stream: it ended after %d of %d bytes, inside or before page %d: %v", v.name, got, want, got/pageSize, err)
}
