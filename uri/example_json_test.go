package uri_test

import (
	"fmt"

	"github.com/livemig/livemig/uri"
)

func ExampleParse_json() {
	// The channels argument of QMP's migrate and migrate-incoming, as a
	// control plane hands it to QEMU.
	a, err := uri.Parse(`[{"channel-type": "main",
	  "addr": {"transport": "socket", "type": "inet", "host": "::1", "port": "4444"}}]`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a) // the URI says all of it
	fmt.Println(a.JSON())

	// An argv without a shell, and QEMU's tight=false: only JSON says them.
	b, _ := uri.Parse(`{"channel-type": "main", "addr": {"transport": "exec", "args": ["/usr/bin/nc", "-U", "/run/m.sock"]}}`)
	fmt.Printf("%q\n", b.Args.Strings())
	c, _ := uri.Parse(`{"channel-type": "main", "addr": {"transport": "socket", "type": "unix", "path": "mig", "abstract": true, "tight": false}}`)
	fmt.Println(c.Unix.Abstract, c.Unix.Tight)
	fmt.Println(c)

	// What livemig does not carry is an error naming the JSON value.
	_, err = uri.Parse(`[{"channel-type": "main", "addr": {"transport": "rdma", "host": "h", "port": "1"}}]`)
	fmt.Println(err)
	// Output:
	// tcp:[::1]:4444
	// {"channel-type":"main","addr":{"transport":"socket","type":"inet","host":"::1","port":"4444"}}
	// ["/usr/bin/nc" "-U" "/run/m.sock"]
	// true off
	// {"channel-type":"main","addr":{"transport":"socket","type":"unix","path":"mig","abstract":true,"tight":false}}
	// uri: parse "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"rdma\", \"host\": \"h\", \"port\": \"1\"}}]": at offset 48: channels[0].addr.transport: rdma is not supported by livemig: expected socket, exec or file
}

func ExampleAddress_JSON() {
	a, _ := uri.Parse("exec:gzip -c > /tmp/vm.gz,tls-creds=tls0")
	// QEMU runs exec:COMMAND as /bin/sh -c COMMAND; tls-creds is a
	// livemig key, which QEMU refuses: clear TLS before handing it over.
	fmt.Println(a.JSON())
	a.TLS = uri.TLS{}
	fmt.Println("[" + a.JSON() + "]")
	// Output:
	// {"channel-type":"main","addr":{"transport":"exec","args":["/bin/sh","-c","gzip -c > /tmp/vm.gz"]},"tls-creds":"tls0"}
	// [{"channel-type":"main","addr":{"transport":"exec","args":["/bin/sh","-c","gzip -c > /tmp/vm.gz"]}}]
}
