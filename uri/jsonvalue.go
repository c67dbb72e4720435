package uri

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file reads JSON text (RFC 8259) into a small tree that keeps the
// byte offset of every value and key, so that the channels decoder can say
// where a problem is. It is strict where QEMU's parser is strict (a
// duplicate key, a second value after the first) and follows the RFC
// where QEMU is lax: single-quoted strings are refused with a hint.

// maxJSONKeys bounds the keys of one object: QEMU's largest object here,
// an inet addr, has 14 (with transport and type), so more is never valid,
// and the bound keeps the duplicate-key check cheap.
const maxJSONKeys = 32

// maxJSONDepth bounds the nesting of arrays and objects. QEMU's channels
// need four levels (the list, a channel, its addr, the exec args); deeper
// input is never valid, and the bound keeps the recursion small.
const maxJSONDepth = 8

// jsonKind is the type of a JSON value.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

// String returns the kind as a reason names it: "a string", "an object".
func (k jsonKind) String() string {
	switch k {
	case jsonNull:
		return "null"
	case jsonBool:
		return "a boolean"
	case jsonNumber:
		return "a number"
	case jsonString:
		return "a string"
	case jsonArray:
		return "an array"
	}
	return "an object"
}

// jsonValue is one parsed value.
type jsonValue struct {
	kind    jsonKind
	off     int          // offset of the value's first byte in the input
	str     string       // jsonString: the decoded text; jsonNumber: the literal
	b       bool         // jsonBool
	elems   []jsonValue  // jsonArray
	members []jsonMember // jsonObject, in input order
}

// jsonMember is one key and value of an object.
type jsonMember struct {
	key    string
	keyOff int
	val    jsonValue
}

// jsonReader reads one JSON text. Errors carry an offset and a reason;
// the caller turns them into an *Error.
type jsonReader struct {
	in  string
	pos int
}

// jsonError is a syntax error at an offset.
type jsonError struct {
	off    int
	reason string
}

// readJSON parses in as exactly one JSON value with optional white space
// around it.
func readJSON(in string) (jsonValue, *jsonError) {
	r := &jsonReader{in: in}
	r.skipSpace()
	v, err := r.value(1)
	if err != nil {
		return jsonValue{}, err
	}
	r.skipSpace()
	if r.pos < len(r.in) {
		return jsonValue{}, r.fail(r.pos, "unexpected "+r.describe(r.pos)+" after the JSON value: expected the end of the input")
	}
	return v, nil
}

func (r *jsonReader) fail(off int, reason string) *jsonError {
	return &jsonError{off: off, reason: reason}
}

// describe names the byte at off for a message.
func (r *jsonReader) describe(off int) string {
	if off >= len(r.in) {
		return "end of input"
	}
	c, _ := utf8.DecodeRuneInString(r.in[off:])
	return strconv.QuoteRune(c)
}

func (r *jsonReader) skipSpace() {
	for r.pos < len(r.in) {
		switch r.in[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// value parses the value at r.pos; depth counts the arrays and objects it
// would be inside, itself included.
func (r *jsonReader) value(depth int) (jsonValue, *jsonError) {
	if r.pos >= len(r.in) {
		return jsonValue{}, r.fail(r.pos, "unexpected end of input: expected a JSON value")
	}
	off := r.pos
	switch c := r.in[r.pos]; {
	case c == '{' || c == '[':
		if depth > maxJSONDepth {
			return jsonValue{}, r.fail(off, "JSON nested deeper than "+strconv.Itoa(maxJSONDepth)+" levels: expected QEMU's channels, which need 4")
		}
		if c == '{' {
			return r.object(depth)
		}
		return r.array(depth)
	case c == '"':
		s, err := r.string()
		return jsonValue{kind: jsonString, off: off, str: s}, err
	case c == '\'':
		return jsonValue{}, r.fail(off, "single-quoted string: QEMU accepts them, livemig takes standard JSON: expected '\"'")
	case c == '-' || isDigit(c):
		s, err := r.number()
		return jsonValue{kind: jsonNumber, off: off, str: s}, err
	}
	for _, lit := range []struct {
		word string
		v    jsonValue
	}{
		{"true", jsonValue{kind: jsonBool, b: true}},
		{"false", jsonValue{kind: jsonBool}},
		{"null", jsonValue{kind: jsonNull}},
	} {
		if len(r.in)-r.pos >= len(lit.word) && r.in[r.pos:r.pos+len(lit.word)] == lit.word {
			r.pos += len(lit.word)
			v := lit.v
			v.off = off
			return v, nil
		}
	}
	return jsonValue{}, r.fail(off, "unexpected "+r.describe(off)+": expected a JSON value")
}

func (r *jsonReader) object(depth int) (jsonValue, *jsonError) {
	v := jsonValue{kind: jsonObject, off: r.pos}
	r.pos++ // '{'
	r.skipSpace()
	if r.pos < len(r.in) && r.in[r.pos] == '}' {
		r.pos++
		return v, nil
	}
	for {
		r.skipSpace()
		keyOff := r.pos
		if r.pos >= len(r.in) || r.in[r.pos] != '"' {
			if r.pos < len(r.in) && r.in[r.pos] == '\'' {
				return jsonValue{}, r.fail(r.pos, "single-quoted key: QEMU accepts them, livemig takes standard JSON: expected '\"'")
			}
			return jsonValue{}, r.fail(r.pos, "unexpected "+r.describe(r.pos)+": expected a key in double quotes")
		}
		key, err := r.string()
		if err != nil {
			return jsonValue{}, err
		}
		if len(v.members) == maxJSONKeys {
			return jsonValue{}, r.fail(keyOff, "object with more than "+strconv.Itoa(maxJSONKeys)+" keys: expected QEMU's channels, which need at most 14")
		}
		for _, m := range v.members {
			if m.key == key {
				return jsonValue{}, r.fail(keyOff, "duplicate key "+strconv.Quote(key)+": expected each key at most once")
			}
		}
		r.skipSpace()
		if r.pos >= len(r.in) || r.in[r.pos] != ':' {
			return jsonValue{}, r.fail(r.pos, "unexpected "+r.describe(r.pos)+": expected ':' after the key")
		}
		r.pos++
		r.skipSpace()
		val, err := r.value(depth + 1)
		if err != nil {
			return jsonValue{}, err
		}
		v.members = append(v.members, jsonMember{key: key, keyOff: keyOff, val: val})
		r.skipSpace()
		if r.pos < len(r.in) {
			switch r.in[r.pos] {
			case ',':
				r.pos++
				continue
			case '}':
				r.pos++
				return v, nil
			}
		}
		return jsonValue{}, r.fail(r.pos, "unexpected "+r.describe(r.pos)+": expected ',' or '}'")
	}
}

func (r *jsonReader) array(depth int) (jsonValue, *jsonError) {
	v := jsonValue{kind: jsonArray, off: r.pos}
	r.pos++ // '['
	r.skipSpace()
	if r.pos < len(r.in) && r.in[r.pos] == ']' {
		r.pos++
		return v, nil
	}
	for {
		r.skipSpace()
		elem, err := r.value(depth + 1)
		if err != nil {
			return jsonValue{}, err
		}
		v.elems = append(v.elems, elem)
		r.skipSpace()
		if r.pos < len(r.in) {
			switch r.in[r.pos] {
			case ',':
				r.pos++
				continue
			case ']':
				r.pos++
				return v, nil
			}
		}
		return jsonValue{}, r.fail(r.pos, "unexpected "+r.describe(r.pos)+": expected ',' or ']'")
	}
}

// number reads a number literal as RFC 8259 spells it and returns its
// text; the decoder decides which numbers a key takes.
func (r *jsonReader) number() (string, *jsonError) {
	start := r.pos
	if r.in[r.pos] == '-' {
		r.pos++
	}
	switch {
	case r.pos < len(r.in) && r.in[r.pos] == '0':
		r.pos++
		if r.pos < len(r.in) && isDigit(r.in[r.pos]) {
			return "", r.fail(start, "number with a leading zero: expected a JSON number")
		}
	case r.pos < len(r.in) && isDigit(r.in[r.pos]):
		r.digits()
	default:
		return "", r.fail(r.pos, "unexpected "+r.describe(r.pos)+": expected a digit")
	}
	if r.pos < len(r.in) && r.in[r.pos] == '.' {
		r.pos++
		if r.pos >= len(r.in) || !isDigit(r.in[r.pos]) {
			return "", r.fail(r.pos, "unexpected "+r.describe(r.pos)+": expected a digit after '.'")
		}
		r.digits()
	}
	if r.pos < len(r.in) && (r.in[r.pos] == 'e' || r.in[r.pos] == 'E') {
		r.pos++
		if r.pos < len(r.in) && (r.in[r.pos] == '+' || r.in[r.pos] == '-') {
			r.pos++
		}
		if r.pos >= len(r.in) || !isDigit(r.in[r.pos]) {
			return "", r.fail(r.pos, "unexpected "+r.describe(r.pos)+": expected a digit in the exponent")
		}
		r.digits()
	}
	return r.in[start:r.pos], nil
}

func (r *jsonReader) digits() {
	for r.pos < len(r.in) && isDigit(r.in[r.pos]) {
		r.pos++
	}
}

// string reads a double-quoted string and returns its decoded text. It
// refuses raw control characters, invalid UTF-8, unknown escapes and
// unpaired surrogates, as RFC 8259 and QEMU's parser do.
func (r *jsonReader) string() (string, *jsonError) {
	start := r.pos
	r.pos++ // '"'
	var b []byte
	plain := r.pos // start of the run not yet copied into b
	for {
		if r.pos >= len(r.in) {
			return "", r.fail(start, "unterminated string: expected a closing '\"'")
		}
		c := r.in[r.pos]
		switch {
		case c == '"':
			s := r.in[plain:r.pos]
			if b != nil {
				s = string(append(b, s...))
			}
			r.pos++
			return s, nil
		case c < 0x20:
			return "", r.fail(r.pos, "control character "+strconv.QuoteRune(rune(c))+" in a string: expected it escaped, as \\u"+hex4(rune(c)))
		case c == '\\':
			b = append(b, r.in[plain:r.pos]...)
			if err := r.escape(&b); err != nil {
				return "", err
			}
			plain = r.pos
		case c < utf8.RuneSelf:
			r.pos++
		default:
			ru, n := utf8.DecodeRuneInString(r.in[r.pos:])
			if ru == utf8.RuneError && n <= 1 {
				return "", r.fail(r.pos, "invalid UTF-8 in a string: expected UTF-8 text")
			}
			r.pos += n
		}
	}
}

// escape decodes the escape sequence at r.pos (a backslash) onto b.
func (r *jsonReader) escape(b *[]byte) *jsonError {
	off := r.pos
	if r.pos+1 >= len(r.in) {
		return r.fail(off, "unterminated escape: expected a character after '\\'")
	}
	c := r.in[r.pos+1]
	r.pos += 2
	switch c {
	case '"', '\\', '/':
		*b = append(*b, c)
	case 'b':
		*b = append(*b, '\b')
	case 'f':
		*b = append(*b, '\f')
	case 'n':
		*b = append(*b, '\n')
	case 'r':
		*b = append(*b, '\r')
	case 't':
		*b = append(*b, '\t')
	case 'u':
		ru, ok := r.hex4At(r.pos)
		if !ok {
			return r.fail(off, "invalid \\u escape: expected four hex digits")
		}
		r.pos += 4
		if utf16.IsSurrogate(ru) {
			lo, ok := rune(0), false
			if ru < 0xdc00 && r.pos+1 < len(r.in) && r.in[r.pos] == '\\' && r.in[r.pos+1] == 'u' {
				lo, ok = r.hex4At(r.pos + 2)
			}
			pair := utf16.DecodeRune(ru, lo)
			if !ok || pair == utf8.RuneError {
				return r.fail(off, "unpaired surrogate "+`\u`+hex4(ru)+": expected a valid UTF-16 pair")
			}
			r.pos += 6
			ru = pair
		}
		*b = utf8.AppendRune(*b, ru)
	default:
		return r.fail(off, "invalid escape "+r.describe(off+1)+` after '\': expected one of \" \\ \/ \b \f \n \r \t \uXXXX`)
	}
	return nil
}

// hex4At reads four hex digits at off.
func (r *jsonReader) hex4At(off int) (rune, bool) {
	if off+4 > len(r.in) {
		return 0, false
	}
	n, err := strconv.ParseUint(r.in[off:off+4], 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// hex4 spells a code unit as four lower-case hex digits.
func hex4(r rune) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[r>>12&0xf], digits[r>>8&0xf], digits[r>>4&0xf], digits[r&0xf]})
}
