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
// truncated stream, the offset where the missing byte should be).
package vmstream
