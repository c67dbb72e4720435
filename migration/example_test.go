package migration_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// A destination listens, a source dials, and a page goes across.
func ExampleDial() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	addr, err := uri.Parse("unix:" + filepath.Join(dir, "mig.sock"))
	if err != nil {
		log.Fatal(err)
	}

	ln, err := migration.Listen(ctx, addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	accepted := ln.AcceptTask(ctx)

	src, err := migration.Dial(ctx, ln.Addr(), &migration.Config{SessionID: migration.SessionID{0x42}})
	if err != nil {
		log.Fatal(err)
	}
	page := make([]byte, 4096)
	copy(page, "guest page")
	src.PutBE64(0x1000) // address
	src.PutBufferNoCopy(page)
	if err := src.Close(); err != nil {
		log.Fatal(err)
	}

	dst, err := accepted.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()
	fmt.Println("session:", dst.SessionID())
	fmt.Printf("address: %#x\n", dst.GetBE64())
	dst.GetBuffer(page)
	fmt.Println("page:", strings.TrimRight(string(page), "\x00"))
	dst.GetByte()
	fmt.Println("end:", dst.Err())
	// Output:
	// session: 42000000-0000-0000-0000-000000000000
	// address: 0x1000
	// page: guest page
	// end: EOF
}

// A Task reports its phases; Wait returns the Stream.
func ExampleConnect() {
	ctx := context.Background()
	addr, _ := uri.Parse("tcp:127.0.0.1:0")
	ln, err := migration.Listen(ctx, addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	accepted := ln.AcceptTask(ctx)

	var phases []string
	task := migration.Connect(ctx, ln.Addr(), &migration.Config{
		Progress: func(p migration.Phase) { phases = append(phases, p.String()) },
	})
	src, err := task.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	src.Close()
	if dst, err := accepted.Wait(ctx); err == nil {
		dst.Close()
	}
	fmt.Println(strings.Join(phases, " -> "))
	// Output: resolve -> connect -> hello -> ready
}

// A Stream over an in-memory channel: what QEMU's savevm writes and
// loadvm reads.
func ExampleStream() {
	buf := channel.NewBuffer(nil)
	w := migration.NewStream(buf)
	w.PutBE32(0x5145564D) // QEMU_VM_FILE_MAGIC
	w.PutBE32(3)          // version
	w.PutByte(0x01)       // QEMU_VM_SECTION_START
	w.PutCountedString("ram")
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}

	buf.Seek(0, io.SeekStart)
	r := migration.NewStream(buf)
	magic, version, section := r.GetBE32(), r.GetBE32(), r.GetByte()
	name, _ := r.GetCountedString()
	fmt.Printf("magic %#x version %d section %d %q\n", magic, version, section, name)
	r.GetByte()
	fmt.Println("then:", r.Err(), "after", r.Stats().Read, "bytes")
	// Output:
	// magic 0x5145564d version 3 section 1 "ram"
	// then: EOF after 13 bytes
}

// Two channels of one session, grouped by the destination's Server.
func ExampleServer() {
	ctx := context.Background()
	addr, _ := uri.Parse("tcp:127.0.0.1:0")
	ln, err := migration.Listen(ctx, addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := migration.NewServer(ln)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	done := make(chan error, 1)
	go func() {
		src, err := migration.DialSession(ctx, ln.Addr(), &migration.Config{Channels: 2})
		if err != nil {
			done <- err
			return
		}
		io.WriteString(src, strings.Repeat("page ", 100000))
		done <- src.Close()
	}()

	dst, err := srv.AcceptSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()
	data, err := io.ReadAll(dst)
	fmt.Println(dst.Channels(), "channels,", len(data), "bytes in order:", err == nil && strings.Count(string(data), "page ") == 100000)
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output: 2 channels, 500000 bytes in order: true
}
