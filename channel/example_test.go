//go:build linux

package channel_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/livemig/livemig/channel"
)

// A destination listens, a source dials and sends; the destination reads
// until the source shuts down its write direction.
func ExampleListen() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	l, err := channel.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	go func() {
		src, err := channel.Dial(ctx, "tcp", l.Addrs()[0].String())
		if err != nil {
			log.Print(err)
			return
		}
		defer src.Close()
		src.Write([]byte("QEVM stream"))
		src.Shutdown(channel.Write)
	}()

	dst, err := l.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()
	dst.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(dst)
	fmt.Printf("%q %v\n", got, err)
	// Output: "QEVM stream" <nil>
}

// Dial with options: a numeric host only, a connect timeout and
// multipath TCP when the kernel has it.
func ExampleDialer_Dial() {
	ctx := context.Background()
	l, err := channel.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	d := &channel.Dialer{
		NetDialer:    &net.Dialer{Timeout: 5 * time.Second},
		Numeric:      true,
		MultipathTCP: true,
	}
	c, err := d.Dial(ctx, "tcp", l.Addrs()[0].String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Network())

	_, err = d.Dial(ctx, "tcp", "localhost:1")
	fmt.Println(err)
	// Output:
	// tcp
	// dial tcp localhost:1: host "localhost" is not a numeric IP address
}

// WriteBuffers sends many guest pages with one writev, without copying
// them. It consumes its argument, so a caller that sends the same set of
// slices again keeps a template and copies it into a reused working slice.
func ExampleChannel_writeBuffers() {
	ctx := context.Background()
	l, err := channel.Listen(ctx, "unix", "@livemig-example-writebuffers")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	src, err := channel.Dial(ctx, "unix", "@livemig-example-writebuffers")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	dst, err := l.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()

	page := make([]byte, 4096)
	template := make(net.Buffers, 64)
	for i := range template {
		template[i] = page
	}
	work := make(net.Buffers, len(template))

	go io.Copy(io.Discard, dst)
	for range 2 {
		bufs := work[:copy(work, template)]
		n, err := src.WriteBuffers(&bufs)
		fmt.Println(n, len(bufs), err)
	}
	// Output:
	// 262144 0 <nil>
	// 262144 0 <nil>
}
