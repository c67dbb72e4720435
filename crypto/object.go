package crypto

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/livemig/livemig/internal/qemuopt"
)

// Object is a credentials object (*Creds) or an authz object ([Authz]).
type Object interface {
	ID() string
}

// ObjectError reports a bad -object specification. Key names the
// offending key ("" when the problem is not one key).
type ObjectError struct {
	Type string // the object type, e.g. "tls-creds-x509"
	ID   string // the id, when known
	Key  string
	Err  error
}

// Error returns "crypto: -object TYPE,id=ID: key KEY: reason".
func (e *ObjectError) Error() string {
	var b strings.Builder
	b.WriteString("crypto: -object ")
	if e.Type == "" {
		b.WriteString("(no type)")
	} else {
		b.WriteString(e.Type)
	}
	if e.ID != "" {
		b.WriteString(",id=")
		b.WriteString(e.ID)
	}
	if e.Key != "" {
		b.WriteString(": key ")
		b.WriteString(strconv.Quote(e.Key))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ObjectError) Unwrap() error { return e.Err }

// spec is a parsed -object option string: its type and its key=value
// properties.
type spec struct {
	Type  string
	Props map[string]string
}

// parseSpec splits a QEMU -object option string ("TYPE,key=value,...",
// or "qom-type=TYPE,...") into a spec. A doubled comma is a literal comma.
// It checks syntax only: every element but the type must be key=value,
// and no key may repeat.
func parseSpec(s string) (*spec, error) {
	parts := splitOpts(s)
	sp := &spec{Props: map[string]string{}}
	if len(parts) == 0 || parts[0] == "" {
		return nil, &ObjectError{Err: errors.New("empty object specification")}
	}
	first := parts[0]
	rest := parts[1:]
	if strings.Contains(first, "=") {
		rest = parts
	} else {
		sp.Type = first
	}
	for _, p := range rest {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, &ObjectError{Type: sp.Type, Key: k, Err: fmt.Errorf("expected key=value, found %q", p)}
		}
		if k == "qom-type" {
			if sp.Type != "" {
				return nil, &ObjectError{Type: sp.Type, Key: k, Err: errors.New("type given twice")}
			}
			sp.Type = v
			continue
		}
		if _, dup := sp.Props[k]; dup {
			return nil, &ObjectError{Type: sp.Type, ID: sp.Props["id"], Key: k, Err: errors.New("given twice")}
		}
		sp.Props[k] = v
	}
	if sp.Type == "" {
		return nil, &ObjectError{Err: errors.New("missing object type")}
	}
	if sp.Props["id"] == "" {
		return nil, &ObjectError{Type: sp.Type, Key: "id", Err: errors.New("missing: every object needs an id")}
	}
	if qemuopt.BadID(sp.Props["id"]) >= 0 {
		return nil, &ObjectError{Type: sp.Type, Key: "id", Err: fmt.Errorf("%q is not a valid id (%s)", sp.Props["id"], qemuopt.IDRule)}
	}
	return sp, nil
}

// splitOpts splits on single commas; ",," is a literal comma.
func splitOpts(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if i+1 < len(s) && s[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	parts = append(parts, cur.String())
	return parts
}

// ParseObject parses a QEMU -object option string and builds the object;
// credentials objects load (and check) their files now, as QEMU does when
// the object is created. See the package doc for the accepted types and
// keys.
func ParseObject(spec string) (Object, error) {
	sp, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	return sp.build()
}

// build constructs the object sp describes.
func (sp *spec) build() (Object, error) {
	id := sp.Props["id"]
	fail := func(key string, err error) error {
		return &ObjectError{Type: sp.Type, ID: id, Key: key, Err: err}
	}
	allowed := map[string][]string{
		string(X509):   {"id", "dir", "endpoint", "verify-peer", "priority", "sanity-check", "passwordid"},
		string(PSK):    {"id", "dir", "endpoint", "username", "priority"},
		string(Anon):   {"id", "dir", "endpoint", "priority", "verify-peer"},
		"authz-simple": {"id", "identity"},
		"authz-list":   {"id", "policy"},
	}
	keys, known := allowed[sp.Type]
	if !known {
		return nil, &ObjectError{Type: sp.Type, ID: id, Err: fmt.Errorf("unknown object type (want one of %s)", strings.Join(slices.Sorted(maps.Keys(allowed)), ", "))}
	}
	for _, k := range slices.Sorted(maps.Keys(sp.Props)) {
		if sp.Type == "authz-list" && strings.HasPrefix(k, "rules.") {
			continue
		}
		if !slices.Contains(keys, k) {
			return nil, fail(k, fmt.Errorf("unknown key (want one of %s)", strings.Join(keys, ", ")))
		}
	}
	switch sp.Type {
	case "authz-simple":
		identity, ok := sp.Props["identity"]
		if !ok {
			return nil, fail("identity", errors.New("missing"))
		}
		return NewAuthzSimple(id, identity), nil
	case "authz-list":
		return sp.buildList(fail)
	}
	ep := Client
	if v, ok := sp.Props["endpoint"]; ok {
		switch v {
		case "client":
		case "server":
			ep = Server
		default:
			return nil, fail("endpoint", fmt.Errorf("%q is neither client nor server", v))
		}
	}
	switch Kind(sp.Type) {
	case X509:
		o := X509Options{ID: id, Dir: sp.Props["dir"], Endpoint: ep}
		if o.Dir == "" {
			return nil, fail("dir", errors.New("missing: tls-creds-x509 needs a directory"))
		}
		if v, ok := sp.Props["verify-peer"]; ok {
			b, err := parseBool(v)
			if err != nil {
				return nil, fail("verify-peer", err)
			}
			o.InsecureSkipVerifyPeer = !b
		}
		if v, ok := sp.Props["sanity-check"]; ok {
			b, err := parseBool(v)
			if err != nil {
				return nil, fail("sanity-check", err)
			}
			o.SkipSanityCheck = !b
		}
		if _, ok := sp.Props["passwordid"]; ok {
			return nil, fail("passwordid", errors.New("encrypted private keys are not supported; decrypt the key into a 0600 file"))
		}
		c, err := NewX509Creds(o)
		return creds(c, err, sp.Props["priority"])
	case PSK:
		o := PSKOptions{ID: id, Dir: sp.Props["dir"], Endpoint: ep, Username: sp.Props["username"]}
		if o.Dir == "" {
			return nil, fail("dir", errors.New("missing: tls-creds-psk needs a directory holding keys.psk"))
		}
		if _, ok := sp.Props["username"]; ok && ep == Server {
			return nil, fail("username", errors.New("only a client has a username; a server accepts every user in keys.psk"))
		}
		c, err := NewPSKCreds(o)
		return creds(c, err, sp.Props["priority"])
	case Anon:
		if v, ok := sp.Props["verify-peer"]; ok {
			b, err := parseBool(v)
			if err != nil {
				return nil, fail("verify-peer", err)
			}
			if b {
				return nil, fail("verify-peer", errors.New("anonymous credentials cannot verify a peer"))
			}
		}
		c, err := NewAnonCreds(id, ep)
		return creds(c, err, sp.Props["priority"])
	}
	return nil, fail("", errors.New("unreachable"))
}

// creds records the priority= string on c (for the Registry's warning;
// it is not applied) and returns c as an Object, or a nil Object (not a
// nil *Creds in the interface) when err is set.
func creds(c *Creds, err error, priority string) (Object, error) {
	if err != nil {
		return nil, err
	}
	c.priority = priority
	return c, nil
}

func (sp *spec) buildList(fail func(string, error) error) (Object, error) {
	id := sp.Props["id"]
	def := Deny
	if v, ok := sp.Props["policy"]; ok {
		p, err := parsePolicy(v)
		if err != nil {
			return nil, fail("policy", err)
		}
		def = p
	}
	type ruleProps struct{ match, policy, format *string }
	byIdx := map[int]*ruleProps{}
	for k, v := range sp.Props {
		rest, ok := strings.CutPrefix(k, "rules.")
		if !ok {
			continue
		}
		idxStr, field, ok := strings.Cut(rest, ".")
		idx, err := strconv.Atoi(idxStr)
		if !ok || err != nil || idx < 0 || idx > 65535 || strconv.Itoa(idx) != idxStr {
			return nil, fail(k, errors.New("want rules.N.match, rules.N.policy or rules.N.format"))
		}
		rp := byIdx[idx]
		if rp == nil {
			rp = &ruleProps{}
			byIdx[idx] = rp
		}
		v := v
		switch field {
		case "match":
			rp.match = &v
		case "policy":
			rp.policy = &v
		case "format":
			rp.format = &v
		default:
			return nil, fail(k, fmt.Errorf("unknown rule field %q (want match, policy or format)", field))
		}
	}
	rules := make([]AuthzRule, len(byIdx))
	for i := range len(byIdx) {
		rp := byIdx[i]
		key := "rules." + strconv.Itoa(i)
		if rp == nil {
			return nil, fail(key, fmt.Errorf("missing: rules must be numbered 0..%d without gaps", len(byIdx)-1))
		}
		if rp.match == nil {
			return nil, fail(key+".match", errors.New("missing"))
		}
		if rp.policy == nil {
			return nil, fail(key+".policy", errors.New("missing"))
		}
		p, err := parsePolicy(*rp.policy)
		if err != nil {
			return nil, fail(key+".policy", err)
		}
		f := Exact
		if rp.format != nil {
			switch *rp.format {
			case "exact":
			case "glob":
				f = Glob
			default:
				return nil, fail(key+".format", fmt.Errorf("%q is neither exact nor glob", *rp.format))
			}
		}
		rules[i] = AuthzRule{Match: *rp.match, Policy: p, Format: f}
	}
	return NewAuthzList(id, def, rules), nil
}

func parsePolicy(v string) (Policy, error) {
	switch v {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	}
	return Deny, fmt.Errorf("%q is neither allow nor deny", v)
}

// parseBool parses a boolean value by QEMU's rule (see internal/qemuopt).
func parseBool(v string) (bool, error) {
	if b, ok := qemuopt.ParseBool(v); ok {
		return b, nil
	}
	return false, fmt.Errorf("%q is not a boolean (%s)", v, qemuopt.BoolValues)
}
