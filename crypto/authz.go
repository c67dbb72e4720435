package crypto

import "unicode/utf8"

// Authz decides whether a client identity may connect. For x509 the
// identity is the verified client certificate's subject DN as [CertDN]
// prints it; for PSK it is the username.
type Authz interface {
	// ID returns the object's id.
	ID() string
	// IsAllowed reports whether identity may connect.
	IsAllowed(identity string) bool
}

// Policy is an authz-list verdict.
type Policy int

// Policies. The zero value is Deny.
const (
	Deny Policy = iota
	Allow
)

// String returns "deny" or "allow".
func (p Policy) String() string {
	if p == Allow {
		return "allow"
	}
	return "deny"
}

// Format says how an AuthzRule's Match is compared.
type Format int

// Formats. The zero value is Exact.
const (
	Exact Format = iota // string equality
	Glob                // '*' matches any run, '?' one character (GLib's g_pattern_match_simple)
)

// String returns "exact" or "glob".
func (f Format) String() string {
	if f == Glob {
		return "glob"
	}
	return "exact"
}

// AuthzRule is one rule of an authz-list.
type AuthzRule struct {
	Match  string
	Policy Policy
	Format Format
}

// AuthzSimple is QEMU's authz-simple: exactly one identity is allowed.
// It is immutable and safe for concurrent use.
type AuthzSimple struct {
	id       string
	identity string
}

var _ Authz = (*AuthzSimple)(nil)

// NewAuthzSimple returns an authz object allowing exactly identity.
func NewAuthzSimple(id, identity string) *AuthzSimple {
	return &AuthzSimple{id: id, identity: identity}
}

// ID returns the object's id.
func (a *AuthzSimple) ID() string { return a.id }

// Identity returns the one allowed identity.
func (a *AuthzSimple) Identity() string { return a.identity }

// IsAllowed reports whether identity equals the configured one.
func (a *AuthzSimple) IsAllowed(identity string) bool { return identity == a.identity }

// AuthzList is QEMU's authz-list: the first matching rule decides, and
// the default policy applies when none matches. It is immutable and safe
// for concurrent use.
type AuthzList struct {
	id    string
	def   Policy
	rules []AuthzRule
}

var _ Authz = (*AuthzList)(nil)

// NewAuthzList returns an authz-list with default policy def.
func NewAuthzList(id string, def Policy, rules []AuthzRule) *AuthzList {
	return &AuthzList{id: id, def: def, rules: append([]AuthzRule(nil), rules...)}
}

// ID returns the object's id.
func (a *AuthzList) ID() string { return a.id }

// Rules returns a copy of the rules.
func (a *AuthzList) Rules() []AuthzRule { return append([]AuthzRule(nil), a.rules...) }

// IsAllowed applies the first matching rule, else the default policy.
func (a *AuthzList) IsAllowed(identity string) bool {
	for _, r := range a.rules {
		var ok bool
		if r.Format == Glob {
			ok = globMatch(r.Match, identity)
		} else {
			ok = r.Match == identity
		}
		if ok {
			return r.Policy == Allow
		}
	}
	return a.def == Allow
}

// globMatch implements g_pattern_match_simple: '*' matches any run of
// characters (including none), '?' exactly one character; nothing escapes.
// It runs in O(len(pattern)*len(s)) with backtracking to the last star.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[i:])
				p++
				i += n
				continue
			default:
				if pattern[p] == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starI:])
		starI += n
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
