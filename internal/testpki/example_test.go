package testpki_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// A defect knob makes material that livemig refuses, naming the file and
// the cause: here a world-readable private key.
func ExampleOptions_defect() {
	dir, err := os.MkdirTemp("", "pki")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	p, err := testpki.Write(dir, &testpki.Options{KeyMode: 0o644})
	if err != nil {
		panic(err)
	}
	_, err = crypto.ParseObject("tls-creds-x509,id=tls0,endpoint=server,dir=" + p.ServerDir)
	fmt.Println(strings.Replace(err.Error(), p.ServerDir, "DIR", 1))
	// Output:
	// crypto: tls0: DIR/server-key.pem: permissions: mode 0644 lets group or others read the private key (chmod 600 it, or opt in with InsecureKeyPermissions)
}
