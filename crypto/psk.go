package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/livemig/livemig/internal/pskkeys"
)

// PSKFile is the name of the keys file in a tls-creds-psk directory.
const PSKFile = "keys.psk"

// DefaultPSKUsername is the identity a PSK client uses without username=,
// as in QEMU.
const DefaultPSKUsername = "qemu"

// PSKOptions configures NewPSKCreds.
type PSKOptions struct {
	ID       string
	Dir      string
	Endpoint Endpoint
	// Username is the client's identity; "" means "qemu". Servers must
	// leave it empty: they accept every user of keys.psk.
	Username string
	// InsecureKeyPermissions allows a keys.psk readable by group or others.
	InsecureKeyPermissions bool
}

type pskMaterial struct {
	keys   map[string][]byte
	stamps stamps
}

// NewPSKCreds loads dir/keys.psk.
func NewPSKCreds(o PSKOptions) (*Creds, error) {
	if o.ID == "" {
		return nil, errors.New("crypto: tls-creds-psk: missing id")
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("crypto: %s: missing dir", o.ID)
	}
	if o.Endpoint == Server && o.Username != "" {
		return nil, fmt.Errorf("crypto: %s: username is for clients; a server accepts every user of %s", o.ID, PSKFile)
	}
	if o.Endpoint == Client && o.Username == "" {
		o.Username = DefaultPSKUsername
	}
	c := &Creds{id: o.ID, kind: PSK, endpoint: o.Endpoint, psk: o}
	m, err := loadPSK(&c.psk)
	if err != nil {
		return nil, err
	}
	c.keys.Store(m)
	return c, nil
}

func loadPSK(o *PSKOptions) (*pskMaterial, error) {
	p := filepath.Join(o.Dir, PSKFile)
	fail := func(check string, err error) error {
		return &CheckError{ID: o.ID, File: p, Check: check, Err: err}
	}
	m := &pskMaterial{keys: map[string][]byte{}}
	if !o.InsecureKeyPermissions {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fail("read", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fail("permissions", fmt.Errorf("mode %#o lets group or others read the keys (chmod 600 it, or opt in with InsecureKeyPermissions)", perm))
		}
	}
	data, err := readBounded(p, &m.stamps)
	if err != nil {
		return nil, fail("read", err)
	}
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimRight(string(line), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		user, hexKey, ok := strings.Cut(s, ":")
		if !ok || user == "" {
			return nil, fail("parse", fmt.Errorf("line %d: want username:hexkey", i+1))
		}
		key, err := hex.DecodeString(strings.TrimSpace(hexKey))
		if err != nil || len(key) == 0 {
			return nil, fail("parse", fmt.Errorf("line %d: key of user %q is not non-empty hex", i+1, user))
		}
		if _, dup := m.keys[user]; dup {
			return nil, fail("parse", fmt.Errorf("line %d: user %q listed twice", i+1, user))
		}
		m.keys[user] = key
	}
	if len(m.keys) == 0 {
		return nil, fail("parse", errors.New("no keys"))
	}
	if o.Endpoint == Client {
		if _, ok := m.keys[o.Username]; !ok {
			return nil, fail("parse", fmt.Errorf("no key for username %q", o.Username))
		}
	}
	return m, nil
}

// PSKIdentity returns the client's username (default "qemu"); "" for
// servers and non-PSK credentials.
func (c *Creds) PSKIdentity() string {
	if c.kind != PSK {
		return ""
	}
	return c.psk.Username
}

func init() { pskkeys.Set(pskKey) }

// pskKey returns a copy of the key of identity from the currently loaded
// keys.psk of creds, a *Creds; channel's DTLS reaches it through
// internal/pskkeys, so that no exported API hands out key material. A
// client only knows its own username's key.
func pskKey(creds any, identity string) ([]byte, error) {
	c, ok := creds.(*Creds)
	if !ok || c == nil {
		return nil, fmt.Errorf("crypto: %T is not credentials", creds)
	}
	if c.kind != PSK {
		return nil, fmt.Errorf("crypto: %s: %s credentials have no PSK", c.id, c.kind)
	}
	if c.endpoint == Client && identity != c.psk.Username {
		return nil, fmt.Errorf("crypto: %s: client identity is %q, not %q", c.id, c.psk.Username, identity)
	}
	k, ok := c.keys.Load().keys[identity]
	if !ok {
		return nil, fmt.Errorf("crypto: %s: unknown PSK identity %q", c.id, identity)
	}
	return bytes.Clone(k), nil
}
