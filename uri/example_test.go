package uri_test

import (
	"errors"
	"fmt"

	"github.com/livemig/livemig/uri"
)

func ExampleParse() {
	a, err := uri.Parse("tcp:[::1]:04444,ipv6,tls-creds=tls0")
	if err != nil {
		fmt.Println(err)
		return
	}
	// A tcp address keeps its fields in a.Inet; a.Vsock, a.Unix and
	// a.File stay zero.
	fmt.Println(a.Transport)
	fmt.Println(a.Inet.Host, a.Inet.Port, a.Inet.IPv6)
	fmt.Println(a.Inet.HostPort())
	fmt.Println(a.TLS.Creds)
	// String gives the canonical form, which parses to an equal Address.
	fmt.Println(a)
	b, _ := uri.Parse(a.String())
	fmt.Println(a == b)
	// Output:
	// tcp
	// ::1 4444 on
	// [::1]:4444
	// tls0
	// tcp:[::1]:4444,ipv6=on,tls-creds=tls0
	// true
}

func ExampleParse_vsock() {
	a, _ := uri.Parse("vsock:3:1234")
	fmt.Println(a.Vsock.CID, a.Vsock.Port)
	// Output:
	// 3 1234
}

func ExampleParse_exec() {
	// The command is taken verbatim; only trailing TLS options are split off.
	a, _ := uri.Parse("exec:ssh dst nc -U /run/mig.sock,tls-creds=tls0,tls-hostname=dst.example")
	fmt.Printf("%q\n", a.Command)
	fmt.Println(a.TLS.Creds, a.TLS.Hostname)
	// Output:
	// "ssh dst nc -U /run/mig.sock"
	// tls0 dst.example
}

func ExampleParse_file() {
	a, _ := uri.Parse("file:/var/lib/vm.state,offset=1.5M")
	fmt.Println(a.File.Path, a.File.Offset)
	// Output:
	// /var/lib/vm.state 1572864
}

func ExampleParse_error() {
	_, err := uri.Parse("tcp::4444,to=4000")
	fmt.Println(err)

	var e *uri.Error
	if errors.As(err, &e) {
		fmt.Println(e.Offset)
	}
	// Output:
	// uri: parse "tcp::4444,to=4000": at offset 13: to=4000 is below port 4444: expected a last port >= the first
	// 13
}

func ExampleAddress_String() {
	for _, s := range []string{
		"tcp:example.com:4444,keep-alive=yes,noipv6,tls-creds=tls0,to=4450",
		"unix:/run/mig.sock,tls-hostname=dst,tls-creds=tls0",
		"fd:007",
		"file:/tmp/vm,offset=0x1000",
	} {
		a, err := uri.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(a)
	}
	// Output:
	// tcp:example.com:4444,to=4450,ipv6=off,keep-alive=on,tls-creds=tls0
	// unix:/run/mig.sock,tls-creds=tls0,tls-hostname=dst
	// fd:7
	// file:/tmp/vm,offset=4096
}

func ExampleInet_PortRange() {
	a, _ := uri.Parse("tcp::4444,to=4450")
	first, last, ok := a.Inet.PortRange()
	fmt.Println(first, last, ok)
	// Output:
	// 4444 4450 true
}
