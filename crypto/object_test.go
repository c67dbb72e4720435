package crypto_test

import (
	"strings"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// TestParseObjectErrors: every rejected spec names the key at fault.
func TestParseObjectErrors(t *testing.T) {
	p := testpki.New(t, nil)
	dir := p.ServerDir
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		// QEMU: qom object_add fails on unknown properties.
		{"unknown key", "tls-creds-x509,id=t,dir=" + dir + ",endpoint=server,bogus=1", `key "bogus": unknown key`},
		// Every object needs an id (user_creatable_add_type).
		{"missing id", "tls-creds-x509,dir=" + dir, `key "id": missing`},
		{"empty spec", "", "empty object specification"},
		// util/id.c id_wellformed: a letter first.
		{"bad id", "tls-creds-anon,id=0bad", `key "id": "0bad" is not a valid id`},
		{"bad id char", "tls-creds-anon,id=a/b", `key "id": "a/b" is not a valid id`},
		{"no type", "id=x,dir=/", "missing object type"},
		{"repeated key", "tls-creds-x509,id=t,dir=" + dir + ",dir=/x", `key "dir": given twice`},
		{"unknown type", "tls-creds-foo,id=t", "unknown object type"},
		// QEMU's QCryptoTLSCredsEndpoint enum.
		{"bad endpoint", "tls-creds-x509,id=t,dir=" + dir + ",endpoint=middle", `key "endpoint": "middle" is neither client nor server`},
		{"bad bool", "tls-creds-x509,id=t,dir=" + dir + ",endpoint=server,verify-peer=maybe", `key "verify-peer": "maybe" is not a boolean`},
		{"x509 without dir", "tls-creds-x509,id=t,endpoint=server", `key "dir": missing`},
		{"passwordid", "tls-creds-x509,id=t,dir=" + dir + ",endpoint=server,passwordid=sec0", `key "passwordid": encrypted private keys`},
		// crypto/tlscredspsk.c: a server must not set username.
		{"psk server username", "tls-creds-psk,id=p,dir=/nonexistent,endpoint=server,username=u", `key "username": only a client`},
		{"authz-simple without identity", "authz-simple,id=a", `key "identity": missing`},
		{"authz-list bad policy", "authz-list,id=a,policy=maybe", `key "policy": "maybe" is neither allow nor deny`},
		{"authz-list rule gap", "authz-list,id=a,rules.1.match=x,rules.1.policy=allow", `key "rules.0": missing`},
		{"authz-list rule without policy", "authz-list,id=a,rules.0.match=x", `key "rules.0.policy": missing`},
		{"authz-list bad format", "authz-list,id=a,rules.0.match=x,rules.0.policy=allow,rules.0.format=regex", `key "rules.0.format": "regex" is neither exact nor glob`},
		{"authz-list bad field", "authz-list,id=a,rules.0.pattern=x", `key "rules.0.pattern": unknown rule field`},
		{"authz-list bad index", "authz-list,id=a,rules.x.match=x", `key "rules.x.match"`},
		{"anon verify-peer", "tls-creds-anon,id=a,endpoint=server,verify-peer=on", `key "verify-peer": anonymous credentials cannot verify`},
		{"element without =", "tls-creds-anon,id=a,endpoint", `key "endpoint": expected key=value`},
		// qapi_bool_parse is case-sensitive and knows no numbers.
		{"bool in capitals", "tls-creds-x509,id=t,dir=" + dir + ",endpoint=server,verify-peer=ON", `key "verify-peer": "ON" is not a boolean (on/off, yes/no, true/false, y/n)`},
		{"bool as number", "tls-creds-x509,id=t,dir=" + dir + ",endpoint=server,sanity-check=1", `key "sanity-check": "1" is not a boolean`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crypto.ParseObject(tc.in)
			if err == nil {
				t.Fatalf("ParseObject(%q) succeeded", tc.in)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseObject(%q) = %v, want %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

// TestParseObject builds each kind from QEMU spellings.
func TestParseObject(t *testing.T) {
	p := testpki.New(t, nil)
	pskDir := t.TempDir()
	if err := testpki.WritePSK(pskDir, map[string][]byte{"qemu": testpki.NewPSK()}); err != nil {
		t.Fatal(err)
	}
	r := crypto.NewRegistry()
	for _, spec := range []string{
		"tls-creds-x509,id=tls0,dir=" + p.ServerDir + ",endpoint=server,verify-peer=on,priority=NORMAL,sanity-check=yes",
		"qom-type=tls-creds-x509,id=tls1,dir=" + p.ClientDir + ",endpoint=client",
		"tls-creds-psk,id=psk0,dir=" + pskDir + ",endpoint=client",
		"tls-creds-anon,id=anon0,endpoint=server",
		"authz-simple,id=auth0,identity=CN=client.example.com,,O=Example,,C=GB",
		"authz-list,id=auth1,policy=deny,rules.0.match=CN=*.example.com*,rules.0.policy=allow,rules.0.format=glob,rules.1.match=CN=evil,rules.1.policy=deny",
	} {
		if err := r.AddObject(spec); err != nil {
			t.Fatalf("AddObject(%q): %v", spec, err)
		}
	}
	// y and n are booleans, as in QEMU's qapi_bool_parse (and in uri).
	for spec, verify := range map[string]bool{
		"tls-creds-x509,id=yes0,dir=" + p.ServerDir + ",endpoint=server,verify-peer=y": true,
		"tls-creds-x509,id=no0,dir=" + p.ServerDir + ",endpoint=server,verify-peer=n":  false,
	} {
		o, err := crypto.ParseObject(spec)
		if err != nil {
			t.Fatalf("ParseObject(%q): %v", spec, err)
		}
		if got := o.(*crypto.Creds).VerifyPeer(); got != verify {
			t.Errorf("ParseObject(%q): VerifyPeer %v, want %v", spec, got, verify)
		}
	}
	if err := r.AddObject("tls-creds-anon,id=tls0,endpoint=client"); err == nil || !strings.Contains(err.Error(), `duplicate id "tls0"`) {
		t.Errorf("duplicate id: %v", err)
	}
	c, err := r.Creds("tls0")
	if err != nil || c.Kind() != crypto.X509 || c.Endpoint() != crypto.Server || !c.VerifyPeer() {
		t.Fatalf("tls0: %v %+v", err, c)
	}
	if c, _ := r.Creds("tls1"); c.Endpoint() != crypto.Client {
		t.Error("tls1 endpoint")
	}
	if c, _ := r.Creds("psk0"); c.PSKIdentity() != "qemu" {
		t.Errorf("default username %q", c.PSKIdentity())
	}
	a, err := r.Authz("auth0")
	if err != nil || !a.IsAllowed("CN=client.example.com,O=Example,C=GB") || a.IsAllowed("CN=client.example.com") {
		t.Errorf("authz-simple with ,, escapes: %v", err)
	}
	l, _ := r.Authz("auth1")
	for dn, want := range map[string]bool{
		"CN=a.example.com,O=X": true,
		"CN=evil":              false,
		"CN=other":             false,
	} {
		if got := l.IsAllowed(dn); got != want {
			t.Errorf("authz-list(%q) = %v", dn, got)
		}
	}
	if _, err := r.Authz("tls0"); err == nil {
		t.Error("Authz on creds id succeeded")
	}
	if _, err := r.Creds("auth0"); err == nil {
		t.Error("Creds on authz id succeeded")
	}
	if err := r.Remove("tls1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Creds("tls1"); err == nil {
		t.Error("removed object still found")
	}
	if err := r.Remove("tls1"); err == nil {
		t.Error("second Remove succeeded")
	}
}

// TestGlob pins g_pattern_match_simple semantics.
func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbb", false},
		{"a?c", "abc", true},
		{"a?c", "aÄc", true}, // ? is one UTF-8 character
		{"a?c", "ac", false},
		{"*.example.com", "CN=x.example.com", true},
		{"CN=*,O=Example", "CN=a,b,O=Example", true},
		{"[ab]", "a", false}, // no character classes
		{"**a", "bba", true},
	} {
		l := crypto.NewAuthzList("l", crypto.Deny, []crypto.AuthzRule{{Match: tc.pat, Policy: crypto.Allow, Format: crypto.Glob}})
		if got := l.IsAllowed(tc.s); got != tc.want {
			t.Errorf("glob %q on %q = %v", tc.pat, tc.s, got)
		}
	}
}
