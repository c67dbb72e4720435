package qemuvm

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"os"
)

// keystreamKey is the fixed AES-128 key (16 bytes) of the keystream.
var keystreamKey = []byte("livemig-qemutest")

// keystreamBlock is the AES block of keystreamKey, made once.
var keystreamBlock = func() cipher.Block {
	b, err := aes.NewCipher(keystreamKey)
	if err != nil {
		panic(err) // the key length is a constant: unreachable
	}
	return b
}()

// Keystream fills p with the keystream bytes that start at byte offset off
// (a multiple of 16): AES-128-CTR of zeros, counter = off/16, fixed key.
func Keystream(off int64, p []byte) {
	var iv [16]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/16))
	clear(p)
	cipher.NewCTR(keystreamBlock, iv[:]).XORKeyStream(p, p)
}

// WriteKeystreamFile creates path holding size bytes of the keystream.
func WriteKeystreamFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("qemuvm: keystream file: %w", err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		Keystream(off, buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("qemuvm: keystream file: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("qemuvm: keystream file: %w", err)
	}
	return nil
}

// PageChecker compares pages against the keystream, reusing its buffer.
// It is not safe for concurrent use.
type PageChecker struct{ want []byte }

// Check reports whether page (PageSize bytes at guest offset off) holds the
// keystream.
func (c *PageChecker) Check(off uint64, page []byte) bool {
	if len(c.want) != len(page) {
		c.want = make([]byte, len(page))
	}
	Keystream(int64(off), c.want)
	return string(c.want) == string(page)
}
