package cryptotest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/crypto/cryptotest"
)

// Write makes the two QEMU-layout directories; a test would call
// cryptotest.New(t, opts) instead, which writes into t.TempDir().
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "pki")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	p, err := cryptotest.Write(dir, &cryptotest.Options{Hosts: []string{"dst.example.org", "192.0.2.7"}})
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
	fmt.Println("server names:", p.ServerCert.DNSNames, p.ServerCert.IPAddresses)
	fmt.Println("client identity:", p.ClientDN)

	// The directories load as tls-creds-x509 objects, and an authz
	// object can allow the client by its identity.
	r := crypto.NewRegistry()
	for _, spec := range []string{
		"tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + p.ServerDir,
		"tls-creds-x509,id=tls1,endpoint=client,dir=" + p.ClientDir,
		"authz-simple,id=auth0,identity=" + strings.ReplaceAll(p.ClientDN, ",", ",,"),
	} {
		if err := r.AddObject(spec); err != nil {
			panic(err)
		}
	}
	fmt.Println("loaded:", r.IDs())
	// Output:
	// server: ca-cert.pem server-cert.pem server-key.pem
	// client: ca-cert.pem client-cert.pem client-key.pem
	// server names: [dst.example.org] [192.0.2.7]
	// client identity: CN=client.example.com,O=Example,C=GB
	// loaded: [auth0 tls0 tls1]
}

// WritePSK writes the keys.psk file of a tls-creds-psk object.
func ExampleWritePSK() {
	dir, err := os.MkdirTemp("", "psk")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	key := make([]byte, 32) // cryptotest.NewPSK() gives a random one
	if err := cryptotest.WritePSK(dir, map[string][]byte{"qemu": key}); err != nil {
		panic(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, crypto.PSKFile))
	fmt.Print(string(data))
	_, err = crypto.ParseObject("tls-creds-psk,id=psk0,endpoint=client,dir=" + dir)
	fmt.Println("loads:", err == nil)
	// Output:
	// qemu:0000000000000000000000000000000000000000000000000000000000000000
	// loads: true
}
