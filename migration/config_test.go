package migration

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
)

// TestConfigClone sets every field of Config to a non-zero value and checks
// Clone copies it; a field added to Config without a value here fails the
// test, so Clone is reviewed for each new field (quic-go's config test).
func TestConfigClone(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &Config{}
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		fv := v.Field(i)
		name := v.Type().Field(i).Name
		switch name {
		case "Registry":
			c.Registry = crypto.NewRegistry()
		case "TLSCreds", "TLSHostname", "TLSAuthz":
			fv.SetString(name)
		case "ConnectTimeout", "HandshakeTimeout", "HelloTimeout", "SessionTimeout", "StallTimeout":
			fv.SetInt(int64(time.Duration(i+1) * time.Second))
		case "SessionID":
			c.SessionID = SessionID{1, 2, 3}
		case "Channels", "PageSize":
			fv.SetInt(int64(i))
		case "index":
			c.index = 1
		case "caps":
			c.caps = 1 << 2
		case "RateLimit":
			c.RateLimit = 1 << 20
		case "MaxPendingSessions", "MaxPendingPerPeer", "MaxHandshakes":
			fv.SetInt(int64(i))
		case "Raw", "DialBack":
			fv.SetBool(true)
		case "FDs":
			c.FDs = map[string]*os.File{"migfd": f}
		case "Logf":
			c.Logf = func(string, ...any) {}
		case "Progress":
			c.Progress = func(Phase) {}
		default:
			t.Fatalf("Config.%s is new: set it here and check Clone copies it", name)
		}
		if fv.IsZero() {
			t.Fatalf("Config.%s not set by the test", name)
		}
	}
	c2 := c.Clone()
	v2 := reflect.ValueOf(c2).Elem()
	for i := 0; i < v.NumField(); i++ {
		a, b := v.Field(i), v2.Field(i)
		if !v.Type().Field(i).IsExported() {
			if !a.Equal(b) {
				t.Errorf("Clone lost Config.%s", v.Type().Field(i).Name)
			}
			continue
		}
		if a.Kind() == reflect.Func {
			if a.Pointer() != b.Pointer() {
				t.Errorf("Clone lost Config.%s", v.Type().Field(i).Name)
			}
			continue
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			t.Errorf("Clone changed Config.%s", v.Type().Field(i).Name)
		}
	}
	c2.FDs["other"] = f
	if len(c.FDs) != 1 {
		t.Error("Clone shares the FDs map")
	}
	if (*Config)(nil).Clone() == nil {
		t.Error("Clone of nil")
	}
}

// TestConfigErrors: bad configurations fail in the resolve phase, before
// any connection is made.
func TestConfigErrors(t *testing.T) {
	reg := crypto.NewRegistry()
	clientSpec, serverSpec := credSpecs(t, "x509")
	if err := reg.AddObject(clientSpec); err != nil {
		t.Fatal(err)
	}
	if err := reg.AddObject(strings.Replace(serverSpec, "id=tls0", "id=srv", 1)); err != nil {
		t.Fatal(err)
	}
	// A listener that must see no connection.
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "l"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sock := "unix:" + l.Addr().String()
	for _, tc := range []struct {
		name, addr string
		cfg        *Config
		wantErr    string
	}{
		// QEMU: migrate_tls_get_creds fails when the object does not exist.
		{"missing creds", sock + ",tls-creds=nope", &Config{Registry: reg}, `tls-creds "nope"`},
		{"no registry", sock + ",tls-creds=tls0", nil, "Registry is nil"},
		// QEMU: the source needs endpoint=client.
		{"server creds on the source", sock, &Config{Registry: reg, TLSCreds: "srv", TLSHostname: "h"}, "needs endpoint=client"},
		// QEMU: tls-hostname is required for unix/exec/fd with x509.
		{"x509 on unix without hostname", sock, &Config{Registry: reg, TLSCreds: "tls0"}, "need tls-hostname"},
		{"x509 on exec without hostname", "exec:cat", &Config{Registry: reg, TLSCreds: "tls0"}, "need tls-hostname on exec:"},
		// QEMU: a tcp: address names the host, unless it is empty.
		{"x509 on tcp without host", "tcp::1", &Config{Registry: reg, TLSCreds: "tls0"}, "need tls-hostname on tcp:"},
		{"conflicting creds", sock + ",tls-creds=a", &Config{Registry: reg, TLSCreds: "b"}, `tls-creds "a" in the address conflicts with "b"`},
		{"conflicting hostname", sock + ",tls-creds=tls0,tls-hostname=a", &Config{Registry: reg, TLSHostname: "b"}, "conflicts"},
		{"hostname without creds", sock, &Config{TLSHostname: "x"}, "need tls-creds"},
		{"too many channels", sock, &Config{Channels: MaxChannels + 1}, "Channels 257"},
		{"index past channels", sock, &Config{index: 2, Channels: 2}, "channel index 2 out of range 0..1"},
		{"page size too large", sock, &Config{PageSize: MaxPageSize + 1}, "PageSize 262129 out of range"},
		{"negative page size", sock, &Config{PageSize: -1}, "PageSize -1 out of range"},
		{"negative rate", sock, &Config{RateLimit: -1}, "RateLimit"},
		{"dial-back over exec", "exec:cat", &Config{DialBack: true}, "DialBack needs"},
		// The URI refuses tls-* options on file: (no peer); Config.TLSCreds,
		// which applies to every channel, must not slip TLS onto one.
		{"tls on file", "file:" + filepath.Join(t.TempDir(), "vm.state"), &Config{Registry: reg, TLSCreds: "tls0", TLSHostname: "h"}, "file: has no peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := Connect(context.Background(), mustParse(t, tc.addr), tc.cfg)
			_, err := task.Wait(testCtx(t))
			var pe *PhaseError
			if !errors.As(err, &pe) || pe.Phase != PhaseResolve || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want a resolve-phase error containing %q", err, tc.wantErr)
			}
		})
	}
	l.(*net.UnixListener).SetDeadline(time.Now().Add(20 * time.Millisecond))
	if c, err := l.Accept(); err == nil {
		c.Close()
		t.Fatal("a failing configuration connected")
	}
	// The destination refuses a conflict at Listen, and its authz must exist.
	if _, err := Listen(context.Background(), mustParse(t, sock+",tls-creds=a"), &Config{TLSCreds: "b"}); err == nil {
		t.Fatal("Listen accepted conflicting tls-creds")
	}
	if _, err := Listen(context.Background(), mustParse(t, "file:/nonexistent"), &Config{Registry: reg, TLSCreds: "srv"}); err == nil || !strings.Contains(err.Error(), "file: has no peer") {
		t.Fatalf("Listen with TLS on file: %v", err)
	}
	// Listen resolves the objects: a missing authz and client credentials
	// fail it, before it serves.
	if _, err := Listen(context.Background(), mustParse(t, "unix:"+filepath.Join(t.TempDir(), "d")+",tls-creds=srv,tls-authz=nobody"), &Config{Registry: reg}); err == nil || !strings.Contains(err.Error(), `tls-authz "nobody"`) {
		t.Fatalf("missing authz: %v", err)
	}
	if _, err := Listen(context.Background(), mustParse(t, "unix:"+filepath.Join(t.TempDir(), "d")), &Config{Registry: reg, TLSCreds: "tls0"}); err == nil || !strings.Contains(err.Error(), "needs endpoint=server") {
		t.Fatalf("client creds on the destination: %v", err)
	}
}

// TestAuthz: the destination's tls-authz admits the test client's DN and
// refuses another.
func TestAuthz(t *testing.T) {
	for _, tc := range []struct {
		kind, identity string
		ok             bool
	}{
		{"x509", "CN=client.example.com,O=Example,C=GB", true},
		{"x509", "CN=someone.else", false},
		// QEMU checks a psk client's username against tls-authz.
		{"psk", "qemu", true},
		{"psk", "someone", false},
	} {
		srcCfg, dstCfg := registries(t, tc.kind)
		if err := dstCfg.Registry.AddObject("authz-simple,id=auth0,identity=" + strings.ReplaceAll(tc.identity, ",", ",,")); err != nil {
			t.Fatal(err)
		}
		dstCfg.TLSAuthz = "auth0"
		ctx := testCtx(t)
		ln, err := Listen(ctx, mustParse(t, "tcp:127.0.0.1:0"), dstCfg)
		if err != nil {
			t.Fatal(err)
		}
		at := ln.AcceptTask(ctx)
		src, serr := Dial(ctx, ln.Addr(), srcCfg)
		dst, derr := at.Wait(ctx)
		ln.Close()
		if tc.ok {
			if serr != nil || derr != nil {
				t.Fatalf("%s: source %v, destination %v", tc.identity, serr, derr)
			}
			src.Close()
			dst.Close()
			continue
		}
		if derr == nil {
			dst.Close()
		}
		if src != nil {
			src.Close()
		}
		var pe *PhaseError
		if !errors.As(derr, &pe) || pe.Phase != PhaseTLSHandshake {
			t.Fatalf("%s: destination %v, want a tls-handshake error", tc.identity, derr)
		}
	}
}
