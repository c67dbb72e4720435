package vmstream

import "fmt"

// maxRAMBlocks bounds the block list of MEM_SIZE.
const maxRAMBlocks = 4096

// ram reads the records of one "ram" section up to and including EOS
// (ram_load_precopy in migration/ram.c).
func (p *parser) ram(t Type) error {
	st := &p.rep.RAM
	mask := p.pageSize - 1
	for {
		at := p.off
		w, err := p.be64("ram record")
		if err != nil {
			return err
		}
		flags, addr := w&mask, w&^mask
		switch flags &^ RAMContinue {
		case RAMEOS:
			if flags&RAMContinue != 0 {
				return p.errAt(at, "ram EOS with CONTINUE")
			}
			return nil
		case RAMMemSize:
			if t != Start {
				return p.errAt(at, "ram MEM_SIZE in a %s section, want START", t)
			}
			if err := p.memSize(addr); err != nil {
				return err
			}
			st.Total = addr
		case RAMMultifdFlush:
			st.MultifdFlush++
		case RAMZero, RAMPage, RAMXBZRLE, RAMCompressPage:
			block, err := p.ramBlock(at, flags)
			if err != nil {
				return err
			}
			b := &st.Blocks[p.blocks[block]]
			if b.MappedRAM != nil {
				return p.errAt(at, "ram page record for block %s, whose pages are in its mapped-ram region", block)
			}
			if size := b.Size; addr >= size || size-addr < p.pageSize {
				return p.errAt(at, "ram page at 0x%x is outside block %s of 0x%x bytes", addr, block, size)
			}
			if err := p.ramPage(at, flags&^RAMContinue, b, addr); err != nil {
				return err
			}
		case RAMHook:
			return p.errAt(at, "ram HOOK record (RDMA) is not supported")
		default:
			return p.errAt(at, "ram record has invalid flags 0x%x", flags)
		}
	}
}

func (p *parser) memSize(total uint64) error {
	st := &p.rep.RAM
	if st.Total != 0 || len(st.Blocks) != 0 {
		return p.errAt(p.off-8, "second ram MEM_SIZE")
	}
	left := total
	for left > 0 {
		if len(st.Blocks) >= maxRAMBlocks {
			return p.errAt(p.off, "more than %d ram blocks", maxRAMBlocks)
		}
		name, err := p.idstr("ram block name")
		if err != nil {
			return err
		}
		lenAt := p.off
		size, err := p.be64("ram block length")
		if err != nil {
			return err
		}
		if size > left {
			return p.errAt(lenAt, "ram block %s of 0x%x bytes exceeds the 0x%x left of MEM_SIZE", name, size, left)
		}
		if _, dup := p.blocks[name]; dup {
			return p.errAt(lenAt, "ram block %s listed twice", name)
		}
		left -= size
		p.blocks[name] = len(st.Blocks)
		st.Blocks = append(st.Blocks, Block{Name: name, Size: size})
		b := &st.Blocks[len(st.Blocks)-1]
		// What follows the length depends on capabilities, in this order
		// (ram_save_setup in migration/ram.c): the guest address with
		// x-ignore-shared, then the mapped-ram header. (With postcopy-ram
		// a block whose page size differs from the host's also carries
		// its page size, before the address; the stream does not say
		// when, so such streams are not read.)
		if st.IgnoreShared {
			if b.GuestAddr, err = p.be64("ram block guest address"); err != nil {
				return err
			}
		}
		if st.MappedRAM {
			if err := p.mappedBlock(b, lenAt); err != nil {
				return err
			}
		}
	}
	return nil
}

// ramBlock reads the block name unless CONTINUE repeats the last one.
func (p *parser) ramBlock(at int64, flags uint64) (string, error) {
	if flags&RAMContinue != 0 {
		if p.lastBlock == "" {
			return "", p.errAt(at, "ram CONTINUE with no previous block")
		}
		return p.lastBlock, nil
	}
	nameAt := p.off
	name, err := p.idstr("ram block name")
	if err != nil {
		return "", err
	}
	if _, ok := p.blocks[name]; !ok {
		return "", p.errAt(nameAt, "unknown ram block %q", name)
	}
	p.lastBlock = name
	return name, nil
}

func (p *parser) ramPage(at int64, kind uint64, b *Block, addr uint64) error {
	st := &p.rep.RAM
	block := b.Name
	switch kind {
	case RAMZero:
		fill, err := p.u8("zero-page fill byte")
		if err != nil {
			return err
		}
		st.ZeroPages++
		b.ZeroPages++
		return p.callPage(at, block, addr, nil, fill)
	case RAMPage:
		if uint64(len(p.page)) != p.pageSize {
			p.page = make([]byte, p.pageSize)
		}
		if err := p.full("ram page", p.page); err != nil {
			return err
		}
		st.Pages++
		b.Pages++
		return p.callPage(at, block, addr, p.page, 0)
	case RAMXBZRLE:
		encAt := p.off
		enc, err := p.u8("xbzrle encoding")
		if err != nil {
			return err
		}
		if enc != 1 {
			return p.errAt(encAt, "xbzrle encoding flag 0x%02x, want 0x01", enc)
		}
		lenAt := p.off
		n, err := p.be16("xbzrle length")
		if err != nil {
			return err
		}
		if uint64(n) > p.pageSize {
			return p.errAt(lenAt, "xbzrle length %d exceeds the page size", n)
		}
		st.XBZRLEPages++
		return p.discard("xbzrle data", int64(n))
	default: // RAMCompressPage
		lenAt := p.off
		n, err := p.be32("compressed page length")
		if err != nil {
			return err
		}
		if uint64(n) > 2*p.pageSize+64 { // compressBound(page) is a little above page
			return p.errAt(lenAt, "compressed page length %d is too large", n)
		}
		st.CompressPages++
		return p.discard("compressed page", int64(n))
	}
}

func (p *parser) callPage(at int64, block string, addr uint64, data []byte, fill byte) error {
	if p.opts.Page == nil {
		return nil
	}
	if err := p.opts.Page(block, addr, data, fill); err != nil {
		return &Error{Offset: at, Reason: fmt.Sprintf("ram page %s+0x%x rejected", block, addr), Err: err}
	}
	return nil
}
