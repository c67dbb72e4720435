package testpki_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// Write makes the two QEMU-layout directories; a test would call
// testpki.New(t, opts) instead, which writes into t.TempDir().
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "pki")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	p, err := testpki.Write(dir, &testpki.Options{
		Server: testpki.LeafOptions{DNSNames: []string{"dst.example.org"}},
		CRL:    true,
	})
	if err != nil {
		panic(err)
	}
	for _, d := range []string{p.ServerDir, p.ClientDir} {
		names, _ := filepath.Glob(filepath.Join(d, "*.pem"))
		for i, n := range names {
			names[i] = filepath.Base(n)
		}
		fmt.Println(filepath.Base(d)+":", strings.Join(names, " "))
	}
	fmt.Println("server names:", p.Server.Cert.DNSNames)
	fmt.Println("client identity:", crypto.CertDN(p.Client.Cert))

	// The server directory loads as a tls-creds-x509 object.
	r := crypto.NewRegistry()
	if err := r.AddObject("tls-creds-x509,id=tls0,endpoint=server,dir=" + p.ServerDir); err != nil {
		panic(err)
	}
	fmt.Println("loaded:", r.IDs())
	// Output:
	// server: ca-cert.pem ca-crl.pem server-cert.pem server-key.pem
	// client: ca-cert.pem client-cert.pem client-key.pem
	// server names: [dst.example.org]
	// client identity: CN=client.example.com,O=Example,C=GB
	// loaded: [tls0]
}

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
