package migration_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/crypto/cryptotest"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// A migration of 256 guest pages over a session of two TLS channels,
// with the credentials given as QEMU -object strings over QEMU-layout
// certificate directories. The source sends each page as an 8-byte
// address and the page itself, without copying it; the destination takes
// each page whole with Next, and acknowledges every 64 pages on the
// return path, as QEMU's destination answers its source.
func ExampleDialSession() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "livemig-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pki, err := cryptotest.Write(dir, nil) // ca-cert.pem, server-cert.pem, ...
	if err != nil {
		log.Fatal(err)
	}
	srcReg, dstReg := crypto.NewRegistry(), crypto.NewRegistry()
	if err := srcReg.AddObject("tls-creds-x509,id=tls0,endpoint=client,dir=" + pki.ClientDir); err != nil {
		log.Fatal(err)
	}
	if err := dstReg.AddObject("tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + pki.ServerDir); err != nil {
		log.Fatal(err)
	}

	// The destination, as with -incoming tcp:127.0.0.1:0 and tls-creds.
	addr, err := uri.Parse("tcp:127.0.0.1:0,tls-creds=tls0")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := migration.Listen(ctx, addr, &migration.Config{Registry: dstReg})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := migration.NewServer(ln)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	const pages, pageSize = 256, 4096
	ram := bytes.Repeat([]byte("guest RAM "), pages*pageSize/10+1)[:pages*pageSize]

	// The source: ln.Addr() is the address with the port bound, and
	// its tls-creds=tls0 names the client credentials in srcReg.
	sent := make(chan error, 1)
	acked := make(chan uint64, 1)
	go func() {
		src, err := migration.DialSession(ctx, ln.Addr(), &migration.Config{Registry: srcReg, Channels: 2})
		if err != nil {
			sent <- err
			return
		}
		defer src.Close()
		acks := make(chan uint64, pages)
		go func() { // the return path, read while pages flow
			defer close(acks)
			rp := src.ReturnPath()
			for {
				n := rp.GetBE64()
				if rp.Err() != nil {
					return
				}
				acks <- n
			}
		}()
		var hdr [8]byte
		for i := range pages {
			binary.BigEndian.PutUint64(hdr[:], uint64(i*pageSize))
			src.Write(hdr[:])
			src.PutBufferNoCopy(ram[i*pageSize : (i+1)*pageSize])
		}
		if err := src.CloseWrite(); err != nil { // the destination reads io.EOF
			sent <- err
			return
		}
		var last uint64
		for n := range acks {
			last = n
			if n == pages {
				break
			}
		}
		if err := src.Close(); err != nil {
			sent <- err
			return
		}
		acked <- last
	}()

	dst, err := srv.AcceptSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("destination:", dst.Channels(), "channels from", dst.PeerIdentity())
	rp := dst.ReturnPath()
	got := make([]byte, len(ram))
	n := 0
	for {
		hdr, err := dst.Next(8)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		at := binary.BigEndian.Uint64(hdr)
		page, err := dst.Next(pageSize) // whole, in place
		if err != nil {
			log.Fatal(err)
		}
		copy(got[at:], page)
		if n++; n%64 == 0 {
			rp.PutBE64(uint64(n))
			if err := rp.Flush(); err != nil {
				log.Fatal(err)
			}
		}
	}
	fmt.Println("destination: RAM identical:", bytes.Equal(got, ram))
	dst.Close()
	select {
	case err := <-sent:
		log.Fatal(err)
	case n := <-acked:
		fmt.Println("source: destination acknowledged", n, "pages")
	}
	// Output:
	// destination: 2 channels from x509:CN=client.example.com,O=Example,C=GB
	// destination: RAM identical: true
	// source: destination acknowledged 256 pages
}

// Receiving a migration from QEMU itself: Config.Raw skips livemig's
// hello, so the first bytes are QEMU's stream header. The goroutine
// stands in for a QEMU source given `migrate tcp:127.0.0.1:PORT` in its
// monitor.
func ExampleListen_raw() {
	ctx := context.Background()
	addr, err := uri.Parse("tcp:127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := migration.Listen(ctx, addr, &migration.Config{Raw: true})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	accepted := ln.AcceptTask(ctx)

	go func() {
		c, err := net.Dial("tcp", ln.Addr().Inet.HostPort())
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		// QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION, then QEMU_VM_EOF.
		c.Write([]byte{0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3, 0x00})
	}()

	st, err := accepted.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	magic, version, section := st.GetBE32(), st.GetBE32(), st.GetByte()
	fmt.Printf("magic %#x, version %d, first section type %d\n", magic, version, section)
	st.GetByte()
	fmt.Println("then:", st.Err())
	// Output:
	// magic 0x5145564d, version 3, first section type 0
	// then: EOF
}
