package crypto_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/crypto/cryptotest"
)

// ExampleRegistry_AddObject loads credentials and an authz object from
// QEMU -object strings (a doubled comma is a literal comma, as in QEMU). The directories hold QEMU's tls-creds-x509 layout
// (ca-cert.pem, server-cert.pem, server-key.pem, ...), generated here.
func ExampleRegistry_AddObject() {
	dir, err := os.MkdirTemp("", "livemig-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := cryptotest.Write(dir, nil); err != nil {
		log.Fatal(err)
	}

	reg := crypto.NewRegistry()
	for _, spec := range []string{
		"tls-creds-x509,id=tls0,endpoint=server,dir=" + filepath.Join(dir, "server"),
		"tls-creds-x509,id=tls1,endpoint=client,verify-peer=on,dir=" + filepath.Join(dir, "client"),
		"authz-list,id=auth0,policy=deny,rules.0.match=CN=client.example.com,,O=Example,,C=GB,rules.0.policy=allow",
	} {
		if err := reg.AddObject(spec); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(reg.IDs())

	server, err := reg.Creds("tls0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(server.Kind(), server.Endpoint(), "verify-peer:", server.VerifyPeer())

	authz, err := reg.Authz("auth0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(authz.IsAllowed("CN=client.example.com,O=Example,C=GB"))
	fmt.Println(authz.IsAllowed("CN=intruder,O=Example,C=GB"))

	// A second object with the same id is refused.
	err = reg.AddObject("tls-creds-anon,id=tls0,endpoint=server")
	fmt.Println(err)
	// Output:
	// [auth0 tls0 tls1]
	// tls-creds-x509 server verify-peer: true
	// true
	// false
	// crypto: registry: duplicate id "tls0"
}

// ExampleParseObject shows the errors of a wrong -object string: each
// names the object and the key.
func ExampleParseObject() {
	dir, err := os.MkdirTemp("", "livemig-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := cryptotest.Write(dir, nil); err != nil {
		log.Fatal(err)
	}

	obj, err := crypto.ParseObject("tls-creds-x509,id=tls0,endpoint=client,dir=" + filepath.Join(dir, "client"))
	if err != nil {
		log.Fatal(err)
	}
	creds := obj.(*crypto.Creds)
	fmt.Println(creds.ID(), creds.Kind(), creds.Endpoint())

	_, err = crypto.ParseObject("tls-creds-x509,id=tls0,dir=" + dir + ",verify=on")
	var oe *crypto.ObjectError
	if errors.As(err, &oe) {
		fmt.Printf("key %q: %v\n", oe.Key, oe.Err)
	}

	// The top directory has no ca-cert.pem: the error names the file.
	_, err = crypto.ParseObject("tls-creds-x509,id=tls0,endpoint=server,dir=" + dir)
	var ce *crypto.CheckError
	if errors.As(err, &ce) {
		fmt.Println(filepath.Base(ce.File), ce.Check)
	}
	// Output:
	// tls0 tls-creds-x509 client
	// key "verify": unknown key (want one of id, dir, endpoint, verify-peer, priority, sanity-check, passwordid)
	// ca-cert.pem read
}

// ExampleRegistry_Reload rotates a server certificate on disk, as an
// operator does, and reloads the credentials: connections made from then
// on present the new certificate, while those already up keep theirs.
// (Registry.Watch does the same when the files change.)
func ExampleRegistry_Reload() {
	dir, err := os.MkdirTemp("", "livemig-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pki, err := cryptotest.Write(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	reg := crypto.NewRegistry()
	if err := reg.AddObject("tls-creds-x509,id=tls0,endpoint=server,dir=" + pki.ServerDir); err != nil {
		log.Fatal(err)
	}
	creds, err := reg.Creds("tls0")
	if err != nil {
		log.Fatal(err)
	}
	// presented returns the certificate a new connection would present.
	presented := func() *x509.Certificate {
		cfg, err := creds.TLSConfig(crypto.TLSOptions{})
		if err != nil {
			log.Fatal(err)
		}
		// Each handshake takes the material current when it starts.
		hs, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			log.Fatal(err)
		}
		c, err := x509.ParseCertificate(hs.Certificates[0].Certificate[0])
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	first := presented().SerialNumber
	fmt.Println("presents the written certificate:", presented().Equal(pki.ServerCert))

	if err := pki.RotateServer(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("before Reload, still the first:", presented().SerialNumber.Cmp(first) == 0)
	if err := reg.Reload("tls0"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Reload, the rotated one:", presented().Equal(pki.ServerCert))
	// Output:
	// presents the written certificate: true
	// before Reload, still the first: true
	// after Reload, the rotated one: true
}
