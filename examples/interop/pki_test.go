package interop

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/livemig/livemig/internal/qemutest"
)

// pki is a CA with server and client directories in QEMU's layout.
type pki struct {
	Name                 string
	ServerDir, ClientDir string
}

// pkiMaker makes a PKI in dir with an external tool.
type pkiMaker struct {
	name  string
	tool  string
	build func(t *testing.T, dir string) pki
}

// pkiMakers are the two key types every TLS scenario runs with.
var pkiMakers = []pkiMaker{
	{"rsa-certtool", "certtool", certtoolPKI},
	{"ecdsa-openssl", "openssl", opensslPKI},
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func layout(t *testing.T, dir string) pki {
	t.Helper()
	p := pki{ServerDir: filepath.Join(dir, "server"), ClientDir: filepath.Join(dir, "client")}
	for _, d := range []string{p.ServerDir, p.ClientDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cp := func(from, to string) {
		b, err := os.ReadFile(filepath.Join(dir, from))
		if err != nil {
			t.Fatal(err)
		}
		write(t, to, string(b))
	}
	cp("ca-cert.pem", filepath.Join(p.ServerDir, "ca-cert.pem"))
	cp("ca-cert.pem", filepath.Join(p.ClientDir, "ca-cert.pem"))
	cp("server-cert.pem", filepath.Join(p.ServerDir, "server-cert.pem"))
	cp("server-key.pem", filepath.Join(p.ServerDir, "server-key.pem"))
	cp("client-cert.pem", filepath.Join(p.ClientDir, "client-cert.pem"))
	cp("client-key.pem", filepath.Join(p.ClientDir, "client-key.pem"))
	return p
}

// certtoolPKI follows QEMU's and libvirt's TLS setup documentation:
// RSA keys and templates for GnuTLS's certtool.
func certtoolPKI(t *testing.T, dir string) pki {
	qemutest.Require(t, "certtool")
	write(t, filepath.Join(dir, "ca.info"), "cn = livemig interop CA\nca\ncert_signing_key\nexpiration_days = 2\n")
	write(t, filepath.Join(dir, "server.info"), "organization = livemig\ncn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n")
	write(t, filepath.Join(dir, "client.info"), "country = GB\norganization = livemig\ncn = client.example.com\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n")
	for _, k := range []string{"ca", "server", "client"} {
		run(t, dir, "certtool", "--generate-privkey", "--bits", "2048", "--outfile", k+"-key.pem")
	}
	run(t, dir, "certtool", "--generate-self-signed", "--load-privkey", "ca-key.pem", "--template", "ca.info", "--outfile", "ca-cert.pem")
	for _, k := range []string{"server", "client"} {
		run(t, dir, "certtool", "--generate-certificate", "--load-privkey", k+"-key.pem", "--load-ca-certificate", "ca-cert.pem",
			"--load-ca-privkey", "ca-key.pem", "--template", k+".info", "--outfile", k+"-cert.pem")
	}
	p := layout(t, dir)
	p.Name = "rsa-certtool"
	return p
}

// opensslPKI makes ECDSA P-256 keys and certificates with openssl.
func opensslPKI(t *testing.T, dir string) pki {
	qemutest.Require(t, "openssl")
	serial := func() string {
		b := make([]byte, 8)
		rand.Read(b)
		return "0x" + hex.EncodeToString(b)
	}
	for _, k := range []string{"ca", "server", "client"} {
		run(t, dir, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", k+"-key.pem")
	}
	run(t, dir, "openssl", "req", "-x509", "-new", "-key", "ca-key.pem", "-subj", "/CN=livemig interop CA", "-days", "2",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca-cert.pem")
	write(t, filepath.Join(dir, "server.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
	write(t, filepath.Join(dir, "client.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
	subj := map[string]string{"server": "/O=livemig/CN=localhost", "client": "/C=GB/O=livemig/CN=client.example.com"}
	for _, k := range []string{"server", "client"} {
		run(t, dir, "openssl", "req", "-new", "-key", k+"-key.pem", "-subj", subj[k], "-out", k+".csr")
		run(t, dir, "openssl", "x509", "-req", "-in", k+".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-set_serial", serial(),
			"-days", "2", "-extfile", k+".ext", "-out", k+"-cert.pem")
	}
	p := layout(t, dir)
	p.Name = "ecdsa-openssl"
	return p
}

// forEachPKI runs f once per installed QEMU (qemutest.Each) and key
// type, each with a fresh PKI: subtests "qemu-10.0.2/rsa-certtool".
func forEachPKI(t *testing.T, f func(t *testing.T, q qemutest.QEMU, p pki)) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		for _, m := range pkiMakers {
			t.Run(m.name, func(t *testing.T) {
				qemutest.Require(t, m.tool)
				f(t, q, m.build(t, t.TempDir()))
			})
		}
	})
}
