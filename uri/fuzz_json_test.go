package uri

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParseJSON checks, for any input, URI or JSON: Parse does not panic
// and fails only with an *Error that places the problem inside the input;
// JSON that Parse accepts is valid JSON to encoding/json (the
// differential check); and for every Address a it returns, a.JSON() is
// valid JSON no longer than MaxJSONLength (nor than the input, for JSON
// input), and Parse(a.JSON()) and Parse(a.String()) both give a again.
func FuzzParseJSON(f *testing.F) {
	for _, tt := range jsonTests {
		f.Add(tt.in) // every transport and shape Parse accepts
	}
	for _, tt := range jsonErrorTests {
		if len(tt.in) < 1024 {
			f.Add(tt.in) // every error, at its boundary
		}
	}
	for _, tt := range parseTests {
		f.Add(tt.in) // URIs: their JSON form must round-trip too
	}
	for _, seed := range []string{
		// QMP's channels argument with white space, as a client sends it
		"[ {\"channel-type\": \"main\",\n  \"addr\": {\"transport\": \"socket\", \"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \"4444\"}} ]",
		// surrogate pair, escapes a URI writes raw
		`{"channel-type":"main","addr":{"transport":"exec","args":["/bin/echo","\ud83d\ude00\u0001\n"]}}`,
		// the sh -c argv that QEMU makes of exec:CMD
		`{"channel-type":"main","addr":{"transport":"exec","args":["/bin/sh","-c","cat,tls-creds=x"]}}`,
		"exec:\x01\x02\"\\", // a URI whose JSON escapes grow it
		"unix:@a",           // abstract in a URI
		`{"channel-type":"main","addr":{"transport":"socket","type":"unix","path":"@a","abstract":false}}`,
		`{"channel-type":"main","addr":{"transport":"socket","type":"inet","host":"1.2.3.4","port":"1","ipv4":false}}`,
		`[{"channel-type":"main","addr":{"transport":"socket","type":"fd","str":"007"}},`,
		`{"channel-type":"main","addr":{"transport":"file","filename":"/f","offset":-0}}`,
		`{"":{"":{"":{"":{"":{"":{"":{"":{}}}}}}}}}`,
		`[1e999999999]`,
		`["\u0000"]`,
		"\t[]",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !a.IsZero() {
				t.Fatalf("Parse(%q) = %#v, %T %v", s, a, err, err)
			}
			if e.Input != s || e.Offset < 0 || e.Offset > len(s) || e.Reason == "" {
				t.Fatalf("Parse(%q): bad Error %#v", s, e)
			}
			return
		}
		if isJSON(s) && !json.Valid([]byte(s)) {
			t.Fatalf("Parse accepted %q, which encoding/json says is not JSON", s)
		}
		j := a.JSON()
		if !json.Valid([]byte(j)) {
			t.Fatalf("JSON() of %q is not valid JSON: %s", s, j)
		}
		if len(j) > MaxJSONLength || isJSON(s) && len(j) > len(s) {
			t.Fatalf("JSON() of a %d-byte input is %d bytes", len(s), len(j))
		}
		for _, form := range []string{j, "[" + j + "]", a.String()} {
			b, err := Parse(form)
			if err != nil {
				t.Fatalf("Parse(%q) succeeded, but its form %q does not parse: %v", s, form, err)
			}
			if b != a {
				t.Fatalf("round trip of %q through %q:\n got %#v\nwant %#v", s, form, b, a)
			}
		}
		if str := a.String(); !isJSON(str) && strings.IndexByte(str, ':') < 0 {
			t.Fatalf("String() of %q is %q, neither a URI nor JSON", s, str)
		}
		if o := otherFields(a); !o.IsZero() {
			t.Fatalf("Parse(%q) sets fields of other transports: %#v", s, o)
		}
	})
}
