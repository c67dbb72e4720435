// Package demovm is the demo virtual machine of the example binaries and
// the logic of migrate-source and migrate-dest: guest RAM in an anonymous
// mapping, a workload that dirties pages at a given rate, a dirty bitmap,
// iterative precopy over a migration session, and the small wire protocol
// both sides speak (see proto.go).
//
// Goroutines: the workload writes guest RAM with atomic 64-bit adds and
// then sets the page's dirty bit; the sender clears a page's bit before it
// reads the page, so a page written during the read is sent again in the
// next pass. After the workload stops, the final pass sends every page
// still dirty and the RAM no longer changes.
package demovm

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VM is the demo guest: RAM and its dirty bitmap.
type VM struct {
	RAM   []byte
	dirty []atomic.Uint64
	pages int

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewVM maps size bytes (a multiple of PageSize) of anonymous memory.
func NewVM(size int64) (*VM, error) {
	if !validRAMSize(size) {
		return nil, fmt.Errorf("RAM size %d is not a multiple of %d in 1..%d", size, PageSize, int64(MaxRAMSize))
	}
	ram, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes of guest RAM: %w", size, err)
	}
	pages := int(size / PageSize)
	return &VM{RAM: ram, pages: pages, dirty: make([]atomic.Uint64, (pages+63)/64), stop: make(chan struct{})}, nil
}

// validRAMSize reports whether a VM can have size bytes of RAM: a
// positive multiple of PageSize, at most MaxRAMSize.
func validRAMSize(size int64) bool {
	return size > 0 && size%PageSize == 0 && size <= MaxRAMSize
}

// Close stops the workload and unmaps the RAM.
func (vm *VM) Close() error {
	vm.StopWorkload()
	return unix.Munmap(vm.RAM)
}

// Pages returns the number of pages.
func (vm *VM) Pages() int { return vm.pages }

// words returns the RAM as 64-bit words (the mapping is page-aligned).
func (vm *VM) words() []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(&vm.RAM[0])), len(vm.RAM)/8)
}

// Fill writes a deterministic pattern over the RAM, leaving every eighth
// page zero (as a booted guest has free pages), and marks every page dirty.
func (vm *VM) Fill(seed uint64) {
	w := vm.words()
	x := seed | 1
	for p := 0; p < vm.pages; p++ {
		if p%8 == 7 {
			continue
		}
		for i := p * PageSize / 8; i < (p+1)*PageSize/8; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			w[i] = x
		}
	}
	vm.MarkAllDirty()
}

// MarkAllDirty sets every page's dirty bit (the first pass sends all).
func (vm *VM) MarkAllDirty() {
	for i := range vm.dirty {
		n := min(64, vm.pages-i*64)
		vm.dirty[i].Store(^uint64(0) >> (64 - n))
	}
}

// DirtyCount returns the number of dirty pages.
func (vm *VM) DirtyCount() int {
	n := 0
	for i := range vm.dirty {
		n += bits.OnesCount64(vm.dirty[i].Load())
	}
	return n
}

// TakeDirty clears the bitmap word by word and calls f for each page that
// was dirty, in order; f returning false stops early (the remaining pages
// of the current word are marked dirty again).
func (vm *VM) TakeDirty(f func(page int) bool) {
	for i := range vm.dirty {
		w := vm.dirty[i].Swap(0)
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << b
			if !f(i*64 + b) {
				vm.dirty[i].Or(w)
				return
			}
		}
	}
}

// StartWorkload starts a goroutine that dirties rate pages per second at
// pseudo-random places, in steps of 10 ms, until StopWorkload.
func (vm *VM) StartWorkload(rate int) {
	if rate <= 0 {
		return
	}
	vm.wg.Add(1)
	go func() {
		defer vm.wg.Done()
		w := vm.words()
		x := uint64(0x9E3779B97F4A7C15)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		carry := 0.0
		for {
			select {
			case <-vm.stop:
				return
			case now := <-t.C:
				carry += float64(rate) * now.Sub(last).Seconds()
				last = now
				for ; carry >= 1; carry-- {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					p := int(x % uint64(vm.pages))
					i := p*PageSize/8 + int((x>>32)%(PageSize/8))
					atomic.AddUint64(&w[i], x|1)
					vm.dirty[p/64].Or(1 << (p % 64))
				}
			}
		}
	}()
}

// StopWorkload stops the workload and waits for it; idempotent.
func (vm *VM) StopWorkload() {
	vm.once.Do(func() { close(vm.stop) })
	vm.wg.Wait()
}

// isZero reports whether page is all zero.
func isZero(page []byte) bool {
	w := unsafe.Slice((*uint64)(unsafe.Pointer(&page[0])), len(page)/8)
	var acc uint64
	for _, v := range w {
		acc |= v
	}
	return acc == 0
}
