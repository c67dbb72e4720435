package vmstream

import (
	"bytes"
	"fmt"
)

// ExampleParseFile reads a small mapped-ram file (made by hand, laid out
// as QEMU lays one out) whose stream starts at byte 4096, as a
// "file:PATH,offset=4096" migration writes it, and counts the pages of
// each RAM block that the file holds.
func ExampleParseFile() {
	file := makeHandFile(4096, []bool{true, false, true, true}, false).b
	present := 0
	rep, err := ParseFile(bytes.NewReader(file), 4096, int64(len(file)), &Options{
		Page: func(block string, offset uint64, data []byte, fill byte) error {
			present++
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range rep.RAM.Blocks {
		fmt.Printf("block %s: %d bytes, %d pages present, %d zero; bitmap at 0x%x, pages at 0x%x\n",
			b.Name, b.Size, b.Pages, b.ZeroPages, b.MappedRAM.BitmapOffset, b.MappedRAM.PagesOffset)
	}
	fmt.Println("pages passed to Page:", present)
	// Output:
	// block m: 16384 bytes, 3 pages present, 1 zero; bitmap at 0x107d, pages at 0x2000
	// pages passed to Page: 3
}
