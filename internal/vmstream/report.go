package vmstream

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes a human-readable listing of r: header, configuration,
// one line per section and command, RAM totals, EOF and VMDESCRIPTION.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "QEMU migration stream, version %d, %d bytes read\n", r.Version, r.Size)
	if c := r.Configuration; c != nil {
		fmt.Fprintf(&b, "configuration: machine %s", c.Machine)
		if c.TargetPageBits != 0 {
			fmt.Fprintf(&b, ", target-page-bits %d", c.TargetPageBits)
		}
		if len(c.Capabilities) > 0 {
			fmt.Fprintf(&b, ", capabilities %s", strings.Join(c.Capabilities, " "))
		}
		if c.UUID != "" {
			fmt.Fprintf(&b, ", uuid %s", c.UUID)
		}
		b.WriteByte('\n')
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFSET\tTYPE\tID\tNAME\tINSTANCE\tVERSION\tSIZE")
	ci := 0
	for _, s := range r.Sections {
		for ; ci < len(r.Commands) && r.Commands[ci].Offset < s.Offset; ci++ {
			c := r.Commands[ci]
			fmt.Fprintf(tw, "0x%08x\tCOMMAND\t%d\t%s\t\t\t%d\n", c.Offset, c.Cmd, c.Name, 5+int(c.Len))
		}
		fmt.Fprintf(tw, "0x%08x\t%s\t%d\t%s\t%d\t%d\t%d\n", s.Offset, s.Type, s.ID, s.Name, s.Instance, s.Version, s.Size)
	}
	for ; ci < len(r.Commands); ci++ {
		c := r.Commands[ci]
		fmt.Fprintf(tw, "0x%08x\tCOMMAND\t%d\t%s\t\t\t%d\n", c.Offset, c.Cmd, c.Name, 5+int(c.Len))
	}
	tw.Flush()
	ram := r.RAM
	if ram.Total != 0 {
		fmt.Fprintf(&b, "ram: %d bytes in %d blocks", ram.Total, len(ram.Blocks))
		if ram.IgnoreShared {
			b.WriteString(", x-ignore-shared")
		}
		if ram.MappedRAM {
			b.WriteString(", mapped-ram")
		}
		b.WriteByte('\n')
		writeBlocks(&b, ram)
		fmt.Fprintf(&b, "ram records: %d pages, %d zero pages", ram.Pages, ram.ZeroPages)
		if ram.XBZRLEPages+ram.CompressPages+ram.MultifdFlush > 0 {
			fmt.Fprintf(&b, ", %d xbzrle, %d compressed, %d multifd flushes", ram.XBZRLEPages, ram.CompressPages, ram.MultifdFlush)
		}
		b.WriteByte('\n')
	}
	if r.EOF {
		fmt.Fprintf(&b, "EOF at 0x%08x\n", r.EOFOffset)
	} else {
		b.WriteString("no EOF marker\n")
	}
	if d := r.VMDesc; d != nil {
		fmt.Fprintf(&b, "VMDESCRIPTION at 0x%08x: %d bytes of JSON, page_size %d, %d devices\n", d.Offset, len(d.JSON), d.PageSize, len(d.Devices))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeBlocks lists the RAM blocks, one per line, with the columns their
// capabilities give them.
func writeBlocks(w io.Writer, ram RAMStats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "  BLOCK\tSIZE\tPAGES\tZERO PAGES")
	if ram.IgnoreShared {
		fmt.Fprint(tw, "\tGUEST ADDR")
	}
	if ram.MappedRAM {
		fmt.Fprint(tw, "\tHEADER\tBITMAP\tPAGES AT")
	}
	fmt.Fprintln(tw)
	for _, bl := range ram.Blocks {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d", bl.Name, bl.Size, bl.Pages, bl.ZeroPages)
		if ram.IgnoreShared {
			fmt.Fprintf(tw, "\t0x%x", bl.GuestAddr)
		}
		if m := bl.MappedRAM; m != nil {
			if m.Ignored {
				fmt.Fprintf(tw, "\t0x%08x\tignored (shared)\t", m.HeaderOffset)
			} else {
				fmt.Fprintf(tw, "\t0x%08x\t0x%08x+%d\t0x%08x", m.HeaderOffset, m.BitmapOffset, m.BitmapSize, m.PagesOffset)
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
