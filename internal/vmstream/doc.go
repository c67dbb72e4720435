// Package vmstream reads QEMU migration streams (savevm format, magic
// 0x5145564D "QEVM", version 3) and checks their structure: the header,
// the CONFIGURATION section, START/FULL/PART/END sections with their
// footers, COMMANDs, EOF and the trailing VMDESCRIPTION JSON. It is the
// analyzer behind examples/migrate-analyze and the QEMU interop tests.
//
// # What is decoded
//
// The "ram" section is decoded exactly: its be64 words "offset | flags"
// (ZERO, MEM_SIZE with the block list, PAGE with the page bytes, EOS,
// CONTINUE, XBZRLE, COMPRESS_PAGE, MULTIFD_FLUSH), each page bounded by its
// block's size, so a caller can check every page that arrives through
// [Options.Page] (the interop tests compare them against a keystream).
// With mapped-ram the pages are not in the stream but in the file, and
// [ParseFile] passes each page the file holds to Options.Page too. The
// [Report] lists per RAM block its size, the pages that carry data and the
// zero pages, and with mapped-ram where its header, bitmap and pages are.
//
// # Capabilities that change the RAM layout
//
// Two migration capabilities change what MEM_SIZE carries, and QEMU
// lists both in the "configuration/capabilities" subsection of the
// CONFIGURATION section (vmstate_configuration and
// should_validate_capability in migration/savevm.c; mapped-ram is listed
// since QEMU 9.0, and the streams of QEMU 7.2 and 10.0 both list
// x-ignore-shared). The reader takes them from there;
// [Options.IgnoreShared] and [Options.MappedRAM] exist only for streams
// without a CONFIGURATION section. Each block entry of MEM_SIZE is, in
// order (ram_save_setup and parse_ramblock in migration/ram.c):
//
//	u8 length, block name         always
//	be64 used_length              always
//	be64 page size                postcopy-ram, when the block's page size is not
//	                              the host's (not read here: the stream does not
//	                              say when, so such a stream fails at that block)
//	be64 guest address            x-ignore-shared
//	28-byte mapped-ram header     mapped-ram
//
// (This is the writer's order. QEMU's loader read the mapped-ram header
// before the guest address until QEMU 11.0 fixed it; only files with both
// capabilities were affected.)
//
// With x-ignore-shared, QEMU sends no page of a shared block (a
// memory-backend with share=on): the destination maps the same memory.
// Such a block shows 0 pages in the report.
//
// # Mapped-ram files
//
// With mapped-ram (QEMU 9.0 and later, "file:" migrations only), pages do
// not travel in the stream: each block has a fixed place in the file
// (mapped_ram_setup_ramblock, ram_save_file_bmap,
// parse_ramblock_mapped_ram and read_ramblock_mapped_ram in
// migration/ram.c, checked against files QEMU 10.0 writes). After a
// block's entry in MEM_SIZE comes a packed header:
//
//	be32 version        1 (MAPPED_RAM_HDR_VERSION)
//	be64 page_size      the target page size
//	be64 bitmap_offset  file offset of the block's bitmap: right after this
//	                    header
//	be64 pages_offset   file offset of the block's page 0: QEMU rounds the
//	                    bitmap's end up to 1 MiB; its loader checks only page
//	                    alignment, to leave room for change, and so does
//	                    this reader
//
// The bitmap has one bit per page of used_length, bit i of byte i/8 for
// page i, in whole 64-bit words: QEMU writes host unsigned longs, so this
// is the layout of 64-bit little-endian hosts (x86-64, aarch64), which
// this reader assumes. A set bit means page i is at pages_offset +
// i*page_size; a clear bit means the page was never written (QEMU skips
// zero pages), and the report counts it as a zero page. The stream goes on
// at pages_offset + used_length, where the next block's entry or the rest
// of the "ram" section follows; the rest of the stream (EOS, devices, EOF,
// VMDESCRIPTION) is as without mapped-ram. With multifd the pages are
// written by several threads, but the file has the same layout. With
// x-ignore-shared too, QEMU 11.0 writes bitmap_offset and pages_offset 0
// for a shared block and the stream goes on right after its header (QEMU
// 10.0 fails that migration); the reader accepts this and marks the block
// ignored.
//
// The offsets are absolute file offsets, also when the stream starts at an
// offset ("file:PATH,offset=N"). So a mapped-ram stream needs the file:
// [ParseFile] takes an io.ReaderAt, the offset where the stream starts and
// the file's size, and reads the bitmap and pages where the headers point.
// [Parse] reads from an io.Reader such as a socket, and stops at the first
// mapped-ram header with an error that says so. (The regions of a file
// QEMU wrote all lie ahead of the stream, so a forward-only reader could
// follow them; but only the file's size lets the reader check a header's
// offsets before it acts on them.)
//
// For each block the reader checks, and refuses at the first failure,
// naming the field: the version is 1; page_size is the stream's;
// bitmap_offset is the header's end (QEMU's loader would follow any
// offset, but QEMU writes no other, and bytes between header and bitmap
// would belong to nothing); pages_offset is page aligned and not inside
// the bitmap; no bit is set past the block's last page. A bitmap or
// pages region that runs past the end of the file, where QEMU's layout
// puts it, means a truncated file, and the error names the file's end; a
// pages_offset beyond the end that QEMU would not have written (not the
// first 1 MiB boundary after the bitmap) is blamed instead. Then every
// present page goes to [Options.Page], at its file offset. Memory stays
// bounded whatever the header says: the bitmap is read in chunks of 256
// KiB and pages one at a time, and no region is read before it is known
// to lie inside the file.
//
// # How device sections are delimited, and the limits of it
//
// Device payloads are not self-describing: their layout lives in QEMU's
// C VMStateDescriptions. The VMDESCRIPTION JSON that describes them comes
// after EOF, so a reader of a live socket cannot use it to find where a
// device section ends. Instead, for every section other than "ram", the
// reader scans forward for the section footer (0x7E followed by the be32
// section id) and accepts a match only when what follows is a plausible
// next item: a START/FULL header with a known type byte, a fresh section id
// and a printable idstr; a PART/END naming a known section; a COMMAND with
// a known number; or EOF. A device payload that happens to contain that
// same pattern would be cut short there; the parse then fails a few bytes
// later with an error, never silently. When the VMDESCRIPTION is present,
// the list of FULL sections (name, instance, version, in order) must equal
// its device list, which catches a mis-split that stays aligned.
// Streams without section footers (machine types 2.3 and older) are
// refused. A device section longer than [Options.MaxDeviceSection] without
// a footer is an error.
//
// The PACKAGED command (postcopy) is skipped over, not parsed. Multifd
// channels carry their own packets and are not read here.
//
// # Live connections
//
// Parse reads to the end of the stream: on a live connection it returns
// when the peer closes it after EOF and VMDESCRIPTION (as QEMU does without
// a return path). It never peeks further ahead than the item it checks.
//
// # Errors
//
// Every read is bounded. A malformed stream returns the [Report] parsed so
// far and an [*Error] whose Offset is the first byte that is wrong (for a
// truncated stream, the offset where the missing byte should be). Offsets
// are file offsets: for ParseFile they count from the file's first byte,
// not the stream's, so a stream written with "file:PATH,offset=4096" has
// its magic at offset 4096; for Parse they count from the first byte read.
package vmstream
