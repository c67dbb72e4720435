package vmstream

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Stream constants (migration/savevm.c).
const (
	Magic   = 0x5145564D // "QEVM"
	Version = 3
)

// Type is a section type byte.
type Type byte

// Section types (migration/savevm.h).
const (
	EOF           Type = 0x00
	Start         Type = 0x01
	Part          Type = 0x02
	End           Type = 0x03
	Full          Type = 0x04
	Subsection    Type = 0x05
	VMDescription Type = 0x06
	Configuration Type = 0x07
	Command       Type = 0x08
	Footer        Type = 0x7E
)

var typeNames = map[Type]string{
	EOF: "EOF", Start: "START", Part: "PART", End: "END", Full: "FULL",
	Subsection: "SUBSECTION", VMDescription: "VMDESCRIPTION",
	Configuration: "CONFIGURATION", Command: "COMMAND", Footer: "FOOTER",
}

// String returns the type's name in savevm.h ("START"), or its hex value.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// RAM flags, the low bits of each be64 word of a "ram" section
// (migration/ram.c).
const (
	RAMZero         = 0x02
	RAMMemSize      = 0x04
	RAMPage         = 0x08
	RAMEOS          = 0x10
	RAMContinue     = 0x20
	RAMXBZRLE       = 0x40
	RAMHook         = 0x80
	RAMCompressPage = 0x100
	RAMMultifdFlush = 0x200
)

// Defaults for Options.
const (
	DefaultMaxDeviceSection = 16 << 20
	DefaultMaxVMDesc        = 64 << 20
)

// Options tunes Parse. The zero value is usable.
type Options struct {
	// Page, if set, is called for every page of a "ram" section: with the
	// page bytes for PAGE records, or data nil and fill set for ZERO
	// records. data is only valid during the call. A non-nil return stops
	// the parse with that error, at the page's offset.
	Page func(block string, offset uint64, data []byte, fill byte) error
	// IgnoreShared: the source had the x-ignore-shared capability (each
	// block in MEM_SIZE carries its guest address). A stream says so in
	// its CONFIGURATION section, which QEMU sends with every machine type
	// newer than 2.3; set it only for a stream without that section.
	IgnoreShared bool
	// MappedRAM: the source had the mapped-ram capability (each block in
	// MEM_SIZE is followed by a header, and its pages are in the file,
	// not in the stream). As for IgnoreShared, the CONFIGURATION section
	// says so; set it only for a stream without that section. Such a
	// stream can only be read by [ParseFile].
	MappedRAM bool
	// MaxDeviceSection bounds the payload of one non-RAM section;
	// 0 means DefaultMaxDeviceSection.
	MaxDeviceSection int64
	// MaxVMDesc bounds the VMDESCRIPTION JSON; 0 means DefaultMaxVMDesc.
	MaxVMDesc int64
}

// Report is what Parse or ParseFile found. Every offset in it is a file
// offset: counted from the first byte Parse read, or from the start of the
// file given to ParseFile (so Start, not 0, is the stream's first byte).
type Report struct {
	Start         int64 // offset of the stream's first byte (the magic)
	Version       uint32
	Configuration *Config   `json:",omitempty"`
	Sections      []Section // in stream order
	Commands      []Cmd     `json:",omitempty"`
	RAM           RAMStats
	EOF           bool    // the EOF marker was seen
	EOFOffset     int64   // its offset
	VMDesc        *VMDesc `json:",omitempty"`
	Size          int64   // bytes from Start to where the parse stopped
}

// Config is the CONFIGURATION section.
type Config struct {
	Offset         int64
	Machine        string
	TargetPageBits uint32   `json:",omitempty"`
	Capabilities   []string `json:",omitempty"`
	UUID           string   `json:",omitempty"`
}

// Section is one START, FULL, PART or END section.
type Section struct {
	Offset   int64 // of the type byte
	Size     int64 // through the footer
	Type     Type
	ID       uint32
	Name     string
	Instance uint32
	Version  uint32
}

// MarshalJSON spells Type by name.
func (t Type) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(t.String())), nil }

// UnmarshalJSON reads the name MarshalJSON writes.
func (t *Type) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("vmstream: section type %s is not a string", b)
	}
	for k, v := range typeNames {
		if v == s {
			*t = k
			return nil
		}
	}
	var v byte
	if _, err := fmt.Sscanf(s, "0x%02x", &v); err == nil && fmt.Sprintf("0x%02x", v) == s {
		*t = Type(v)
		return nil
	}
	return fmt.Errorf("vmstream: unknown section type %q", s)
}

// Cmd is a COMMAND.
type Cmd struct {
	Offset int64
	Cmd    uint16
	Name   string
	Len    uint16
}

// Block is a RAM block announced in MEM_SIZE, with what the reader found
// of it.
type Block struct {
	Name string
	Size uint64 // used_length, in bytes
	// GuestAddr is the block's guest address, which MEM_SIZE carries
	// only with x-ignore-shared (RAMStats.IgnoreShared).
	GuestAddr uint64 `json:",omitempty"`
	// Pages counts the block's pages that carry data: PAGE records in
	// the stream, or with mapped-ram the pages whose bit is set in the
	// block's bitmap. Each was passed to Options.Page. A page sent twice
	// in the stream counts twice.
	Pages uint64
	// ZeroPages counts ZERO records, or with mapped-ram the pages whose
	// bit is clear (QEMU writes no zero page into the file).
	ZeroPages uint64
	// MappedRAM is the block's mapped-ram header, nil without mapped-ram.
	MappedRAM *MappedRAMBlock `json:",omitempty"`
}

// MappedRAMBlock is where a mapped-ram file keeps a block (see the package
// doc). All offsets are file offsets.
type MappedRAMBlock struct {
	HeaderOffset int64  // of the header's version field
	PageSize     uint64 // from the header; equals the stream's page size
	BitmapOffset uint64 // first byte of the bitmap, one bit per page
	BitmapSize   uint64 // bytes of bitmap: whole 64-bit words
	PagesOffset  uint64 // the page at block offset 0; page i is PageSize*i further
	// Ignored: the block is shared memory that x-ignore-shared left out
	// of the file (bitmap and pages offsets both 0; QEMU 11.0 and later).
	Ignored bool `json:",omitempty"`
}

// RAMStats counts the records of the "ram" sections.
type RAMStats struct {
	Total        uint64  // from MEM_SIZE
	Blocks       []Block `json:",omitempty"`
	IgnoreShared bool    `json:",omitempty"` // x-ignore-shared: blocks carry their guest address
	MappedRAM    bool    `json:",omitempty"` // mapped-ram: pages are in the file, not the stream
	// Pages and ZeroPages count PAGE and ZERO records in the stream, of
	// all blocks; mapped-ram pages are counted per block only.
	Pages         uint64 // PAGE records
	ZeroPages     uint64 // ZERO records
	XBZRLEPages   uint64 `json:",omitempty"`
	CompressPages uint64 `json:",omitempty"`
	MultifdFlush  uint64 `json:",omitempty"`
}

// VMDesc is the trailing VMDESCRIPTION.
type VMDesc struct {
	Offset   int64
	PageSize int64
	Devices  []VMDescDevice
	JSON     json.RawMessage `json:"-"`
}

// VMDescDevice is one device of the VMDESCRIPTION.
type VMDescDevice struct {
	Name     string `json:"name"`
	Instance uint32 `json:"instance_id"`
	Version  uint32 `json:"version"`
}

// Error is a malformed or unreadable stream.
type Error struct {
	Offset int64  // first wrong byte
	Reason string // what was expected there
	Err    error  // an underlying read or callback error, or nil
}

// Error formats the offset in decimal and hex, then the reason.
func (e *Error) Error() string {
	s := fmt.Sprintf("vmstream: offset %d (0x%x): %s", e.Offset, e.Offset, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

var cmdNames = map[uint16]string{
	1: "OPEN_RETURN_PATH", 2: "PING", 3: "POSTCOPY_ADVISE", 4: "POSTCOPY_LISTEN",
	5: "POSTCOPY_RUN", 6: "POSTCOPY_RAM_DISCARD", 7: "PACKAGED", 8: "ENABLE_COLO",
	9: "POSTCOPY_RESUME", 10: "RECV_BITMAP", 11: "SWITCHOVER_START",
}

// cmdLen is the fixed payload length of a command, -1 if variable
// (mig_cmd_args in migration/savevm.c).
var cmdLen = map[uint16]int{1: 0, 2: 4, 3: -1, 4: 0, 5: 0, 6: -1, 7: 4, 8: 0, 9: 0, 10: -1, 11: 0}

// maxPackaged bounds the PACKAGED command's embedded stream (QEMU's
// MAX_VM_CMD_PACKAGED_SIZE is 1 << 24).
const maxPackaged = 1 << 24

type sectionInfo struct {
	name              string
	instance, version uint32
}

type parser struct {
	br    *bufio.Reader
	base  int64 // file offset of the magic
	off   int64 // file offset of the next byte br returns
	opts  Options
	rep   *Report
	known map[uint32]sectionInfo

	// ra and size are the file of ParseFile; ra is nil for Parse.
	ra   io.ReaderAt
	size int64

	pageSize  uint64
	blocks    map[string]int // index in rep.RAM.Blocks
	lastBlock string
	page      []byte
}

// Parse reads a whole stream from r. On a malformed stream it returns the
// Report so far and an *Error; read errors other than io.EOF are wrapped
// in an *Error too. Offsets count from the first byte read from r.
//
// A mapped-ram stream cannot be read this way: its pages lie in the file
// around the stream. Parse stops at its first RAM block with an *Error
// saying so; use ParseFile.
func Parse(r io.Reader, opts *Options) (*Report, error) {
	p := newParser(r, 0, opts)
	return p.run()
}

// ParseFile reads the stream that starts at byte offset start of a file of
// size bytes, read through r: a file that QEMU wrote with a "file:PATH"
// migration ("file:PATH,offset=START" writes the stream from byte START
// on), or a stream saved any other way. It reads what Parse reads and, with
// mapped-ram, the RAM block headers, bitmaps and pages that the stream
// points to (see the package doc). The stream must end before size; bytes
// before start are not read. Offsets in the Report and in errors are file
// offsets.
//
// For an *os.File f, pass f and its size from f.Stat; r may be read from
// concurrently by other callers, as io.ReaderAt allows.
func ParseFile(r io.ReaderAt, start, size int64, opts *Options) (*Report, error) {
	if start < 0 || size < 0 || start > size {
		return &Report{Start: start}, &Error{Offset: start, Reason: fmt.Sprintf("stream start %d is outside the file of %d bytes", start, size)}
	}
	p := newParser(io.NewSectionReader(r, start, size-start), start, opts)
	p.ra, p.size = r, size
	return p.run()
}

func newParser(r io.Reader, start int64, opts *Options) *parser {
	p := &parser{
		br:       bufio.NewReaderSize(r, 64<<10),
		base:     start,
		off:      start,
		rep:      &Report{Start: start},
		known:    map[uint32]sectionInfo{},
		pageSize: 4096,
		blocks:   map[string]int{},
	}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.MaxDeviceSection <= 0 {
		p.opts.MaxDeviceSection = DefaultMaxDeviceSection
	}
	if p.opts.MaxVMDesc <= 0 {
		p.opts.MaxVMDesc = DefaultMaxVMDesc
	}
	p.rep.RAM.IgnoreShared = p.opts.IgnoreShared
	p.rep.RAM.MappedRAM = p.opts.MappedRAM
	return p
}

func (p *parser) run() (*Report, error) {
	err := p.parse()
	p.rep.Size = p.off - p.base
	return p.rep, err
}

// jump moves the stream to file offset off, which ParseFile's file holds
// (mapped-ram: the stream resumes after a block's pages).
func (p *parser) jump(off int64) {
	p.br.Reset(io.NewSectionReader(p.ra, off, p.size-off))
	p.off = off
}

func (p *parser) errAt(off int64, format string, args ...any) error {
	return &Error{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// readErr turns a read failure at p.off into an *Error.
func (p *parser) readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Offset: p.off, Reason: "stream ends inside " + what}
	}
	return &Error{Offset: p.off, Reason: "reading " + what, Err: err}
}

func (p *parser) u8(what string) (byte, error) {
	b, err := p.br.ReadByte()
	if err != nil {
		return 0, p.readErr(what, err)
	}
	p.off++
	return b, nil
}

func (p *parser) full(what string, b []byte) error {
	n, err := io.ReadFull(p.br, b)
	p.off += int64(n)
	if err != nil {
		return p.readErr(what, err)
	}
	return nil
}

func (p *parser) be16(what string) (uint16, error) {
	var b [2]byte
	err := p.full(what, b[:])
	return binary.BigEndian.Uint16(b[:]), err
}

func (p *parser) be32(what string) (uint32, error) {
	var b [4]byte
	err := p.full(what, b[:])
	return binary.BigEndian.Uint32(b[:]), err
}

func (p *parser) be64(what string) (uint64, error) {
	var b [8]byte
	err := p.full(what, b[:])
	return binary.BigEndian.Uint64(b[:]), err
}

func (p *parser) discard(what string, n int64) error {
	m, err := p.br.Discard(int(n))
	p.off += int64(m)
	if err != nil {
		return p.readErr(what, err)
	}
	return nil
}

// idstr reads a u8-counted name that must be non-empty printable ASCII.
func (p *parser) idstr(what string) (string, error) {
	start := p.off
	n, err := p.u8(what + " length")
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", p.errAt(start, "empty %s", what)
	}
	b := make([]byte, n)
	if err := p.full(what, b); err != nil {
		return "", err
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			return "", p.errAt(start+1+int64(i), "%s has non-printable byte 0x%02x", what, c)
		}
	}
	return string(b), nil
}

func (p *parser) parse() error {
	magic, err := p.be32("header magic")
	if err != nil {
		return err
	}
	if magic != Magic {
		return p.errAt(p.base, "magic is 0x%08x, want 0x%08x (QEVM)", magic, uint32(Magic))
	}
	v, err := p.be32("header version")
	if err != nil {
		return err
	}
	if v != Version {
		return p.errAt(p.base+4, "version is %d, want %d", v, Version)
	}
	p.rep.Version = v
	for {
		at := p.off
		t, err := p.u8("section type")
		if err != nil {
			if errors.Is(err, io.EOF) || p.off == at {
				return p.errAt(at, "stream ends without the EOF marker")
			}
			return err
		}
		switch Type(t) {
		case Configuration:
			if at != p.base+8 {
				return p.errAt(at, "CONFIGURATION not right after the header")
			}
			if err := p.configuration(); err != nil {
				return err
			}
		case Start, Full:
			if err := p.sectionStart(Type(t), at); err != nil {
				return err
			}
		case Part, End:
			if err := p.sectionPart(Type(t), at); err != nil {
				return err
			}
		case Command:
			if err := p.command(at); err != nil {
				return err
			}
		case EOF:
			p.rep.EOF = true
			p.rep.EOFOffset = at
			return p.afterEOF()
		default:
			return p.errAt(at, "unknown section type 0x%02x", t)
		}
	}
}

func (p *parser) configuration() error {
	c := &Config{Offset: p.off - 1}
	p.rep.Configuration = c
	start := p.off
	n, err := p.be32("configuration machine-type length")
	if err != nil {
		return err
	}
	if n == 0 || n > 256 {
		return p.errAt(start, "configuration machine-type length %d, want 1..256", n)
	}
	b := make([]byte, n)
	if err := p.full("configuration machine type", b); err != nil {
		return err
	}
	c.Machine = string(b)
	for {
		next, err := p.br.Peek(1)
		if err != nil || Type(next[0]) != Subsection {
			return nil // a missing next byte is reported by the main loop
		}
		at := p.off
		p.u8("subsection")
		name, err := p.idstr("configuration subsection name")
		if err != nil {
			return err
		}
		if _, err := p.be32("configuration subsection version"); err != nil {
			return err
		}
		switch name {
		case "configuration/target-page-bits":
			bitsAt := p.off
			bits, err := p.be32("target-page-bits")
			if err != nil {
				return err
			}
			// No QEMU target has pages above 64 KiB (TARGET_PAGE_BITS
			// <= 16); the page size sizes a buffer, so keep it bounded.
			if bits < 9 || bits > 16 {
				return p.errAt(bitsAt, "target-page-bits %d out of range 9..16", bits)
			}
			c.TargetPageBits = bits
			p.pageSize = 1 << bits
		case "configuration/capabilities":
			cntAt := p.off
			cnt, err := p.be32("capability count")
			if err != nil {
				return err
			}
			if cnt > 64 {
				return p.errAt(cntAt, "%d capabilities, want at most 64", cnt)
			}
			for range cnt {
				s, err := p.idstr("capability name")
				if err != nil {
					return err
				}
				c.Capabilities = append(c.Capabilities, s)
				// Capabilities that change the RAM section's layout
				// (should_validate_capability in migration/savevm.c).
				switch s {
				case "x-ignore-shared":
					p.rep.RAM.IgnoreShared = true
				case "mapped-ram":
					p.rep.RAM.MappedRAM = true
				}
			}
		case "configuration/uuid":
			var u [16]byte
			if err := p.full("uuid", u[:]); err != nil {
				return err
			}
			c.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
		default:
			return p.errAt(at, "unknown configuration subsection %q", name)
		}
	}
}

func (p *parser) sectionStart(t Type, at int64) error {
	idAt := p.off
	id, err := p.be32("section id")
	if err != nil {
		return err
	}
	if _, dup := p.known[id]; dup {
		return p.errAt(idAt, "section id %d started twice", id)
	}
	name, err := p.idstr("section idstr")
	if err != nil {
		return err
	}
	inst, err := p.be32("instance id")
	if err != nil {
		return err
	}
	ver, err := p.be32("version id")
	if err != nil {
		return err
	}
	info := sectionInfo{name, inst, ver}
	p.known[id] = info
	return p.body(Section{Offset: at, Type: t, ID: id, Name: name, Instance: inst, Version: ver})
}

func (p *parser) sectionPart(t Type, at int64) error {
	idAt := p.off
	id, err := p.be32("section id")
	if err != nil {
		return err
	}
	info, ok := p.known[id]
	if !ok {
		return p.errAt(idAt, "%s names section id %d, which no START announced", t, id)
	}
	return p.body(Section{Offset: at, Type: t, ID: id, Name: info.name, Instance: info.instance, Version: info.version})
}

// body reads a section's payload and footer and records the section.
func (p *parser) body(s Section) error {
	var err error
	if s.Name == "ram" {
		err = p.ram(s.Type)
		if err == nil {
			err = p.footer(s.ID)
		}
	} else {
		err = p.scanDevice(s)
	}
	s.Size = p.off - s.Offset
	p.rep.Sections = append(p.rep.Sections, s)
	return err
}

func (p *parser) footer(id uint32) error {
	at := p.off
	t, err := p.u8("section footer")
	if err != nil {
		return err
	}
	if Type(t) != Footer {
		return p.errAt(at, "section footer byte is 0x%02x, want 0x7e", t)
	}
	idAt := p.off
	got, err := p.be32("footer section id")
	if err != nil {
		return err
	}
	if got != id {
		return p.errAt(idAt, "footer names section %d, want %d", got, id)
	}
	return nil
}

// scanDevice skips an opaque device payload up to its footer (see the
// package doc for the rule and its limits).
func (p *parser) scanDevice(s Section) error {
	var want [5]byte
	want[0] = byte(Footer)
	binary.BigEndian.PutUint32(want[1:], s.ID)
	start := p.off
	for {
		if p.off-start > p.opts.MaxDeviceSection {
			return p.errAt(start, "section %d (%s) has no footer within %d bytes", s.ID, s.Name, p.opts.MaxDeviceSection)
		}
		b, err := p.br.ReadByte()
		if err != nil {
			return p.readErr(fmt.Sprintf("section %d (%s) before its footer", s.ID, s.Name), err)
		}
		p.off++
		if b != byte(Footer) {
			continue
		}
		pk, _ := p.br.Peek(4)
		if len(pk) < 4 || string(pk) != string(want[1:]) {
			continue
		}
		if !p.plausibleNext() {
			continue
		}
		p.br.Discard(4)
		p.off += 4
		return nil
	}
}

// plausibleNext reports whether the bytes after a candidate footer (at
// Peek offset 4) look like the next item of a stream. It peeks only as far
// as the item's type needs, so on a live connection it never waits for
// bytes the peer has no reason to send yet.
func (p *parser) plausibleNext() bool {
	pk, _ := p.br.Peek(5)
	if len(pk) < 5 {
		return len(pk) == 4 // the stream ends right after: let the main loop say so
	}
	switch Type(pk[4]) {
	case EOF:
		return true
	case Start, Full:
		pk, _ = p.br.Peek(5 + 5)
		if len(pk) < 10 {
			return false
		}
		if _, dup := p.known[binary.BigEndian.Uint32(pk[5:])]; dup {
			return false
		}
		n := int(pk[9])
		if n == 0 {
			return false
		}
		pk, _ = p.br.Peek(10 + n)
		if len(pk) < 10+n {
			return false
		}
		for _, c := range pk[10:] {
			if c < 0x20 || c > 0x7e {
				return false
			}
		}
		return true
	case Part, End:
		pk, _ = p.br.Peek(5 + 4)
		if len(pk) < 9 {
			return false
		}
		_, ok := p.known[binary.BigEndian.Uint32(pk[5:])]
		return ok
	case Command:
		pk, _ = p.br.Peek(5 + 2)
		if len(pk) < 7 {
			return false
		}
		_, ok := cmdNames[binary.BigEndian.Uint16(pk[5:])]
		return ok
	}
	return false
}

func (p *parser) command(at int64) error {
	cmdAt := p.off
	cmd, err := p.be16("command number")
	if err != nil {
		return err
	}
	name, ok := cmdNames[cmd]
	if !ok {
		return p.errAt(cmdAt, "unknown command %d", cmd)
	}
	lenAt := p.off
	n, err := p.be16("command length")
	if err != nil {
		return err
	}
	if want := cmdLen[cmd]; want >= 0 && int(n) != want {
		return p.errAt(lenAt, "command %s has length %d, want %d", name, n, want)
	}
	p.rep.Commands = append(p.rep.Commands, Cmd{Offset: at, Cmd: cmd, Name: name, Len: n})
	if cmd == 7 { // PACKAGED: be32 length, then an embedded stream
		lAt := p.off
		l, err := p.be32("packaged length")
		if err != nil {
			return err
		}
		if l > maxPackaged {
			return p.errAt(lAt, "packaged length %d exceeds %d", l, maxPackaged)
		}
		return p.discard("packaged stream", int64(l))
	}
	return p.discard("command "+name, int64(n))
}

func (p *parser) afterEOF() error {
	at := p.off
	t, err := p.br.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil // no VMDESCRIPTION (e.g. postcopy)
		}
		return p.readErr("byte after EOF", err)
	}
	p.off++
	if Type(t) != VMDescription {
		return p.errAt(at, "byte after EOF is 0x%02x, want VMDESCRIPTION (0x06) or the end", t)
	}
	lenAt := p.off
	n, err := p.be32("VMDESCRIPTION length")
	if err != nil {
		return err
	}
	if int64(n) > p.opts.MaxVMDesc || n == 0 {
		return p.errAt(lenAt, "VMDESCRIPTION length %d, want 1..%d", n, p.opts.MaxVMDesc)
	}
	js := make([]byte, n)
	jsAt := p.off
	if err := p.full("VMDESCRIPTION JSON", js); err != nil {
		return err
	}
	var d struct {
		PageSize int64          `json:"page_size"`
		Devices  []VMDescDevice `json:"devices"`
	}
	if err := json.Unmarshal(js, &d); err != nil {
		var se *json.SyntaxError
		off := jsAt
		if errors.As(err, &se) && se.Offset > 0 {
			off += se.Offset - 1 // Offset counts the bad byte
		}
		return &Error{Offset: off, Reason: "VMDESCRIPTION is not valid JSON", Err: err}
	}
	p.rep.VMDesc = &VMDesc{Offset: at, PageSize: d.PageSize, Devices: d.Devices, JSON: js}
	if d.PageSize != 0 && uint64(d.PageSize) != p.pageSize {
		return p.errAt(jsAt, "VMDESCRIPTION page_size %d, stream uses %d", d.PageSize, p.pageSize)
	}
	// The FULL sections are the devices the JSON describes, in order.
	i := 0
	for _, s := range p.rep.Sections {
		if s.Type != Full {
			continue
		}
		if i >= len(d.Devices) {
			return p.errAt(jsAt, "VMDESCRIPTION lists %d devices, the stream has more FULL sections (%s at offset %d)", len(d.Devices), s.Name, s.Offset)
		}
		dv := d.Devices[i]
		if dv.Name != s.Name || dv.Instance != s.Instance || dv.Version != s.Version {
			return p.errAt(s.Offset, "FULL section %s instance %d version %d, VMDESCRIPTION device %d is %s instance %d version %d",
				s.Name, s.Instance, s.Version, i, dv.Name, dv.Instance, dv.Version)
		}
		i++
	}
	if i != len(d.Devices) {
		return p.errAt(jsAt, "VMDESCRIPTION lists %d devices, the stream has %d FULL sections", len(d.Devices), i)
	}
	if _, err := p.br.Peek(1); err == nil {
		return p.errAt(p.off, "trailing data after VMDESCRIPTION")
	} else if !errors.Is(err, io.EOF) {
		return p.readErr("end of stream", err)
	}
	return nil
}
