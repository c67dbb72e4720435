package proxy

import (
	"fmt"
	"strings"
	"unicode"
)

// oneLine wraps logf so that each message reaches it as one line: see
// flatten. A nil logf stays silent.
func oneLine(logf func(format string, args ...any)) func(format string, args ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) {
		logf("%s", flatten(fmt.Sprintf(format, args...)))
	}
}

// flatten makes msg one line. Errors may span lines (errors.Join puts a
// line break between its errors) and may quote what a peer sent (a
// certificate's host names, say), which must not split a log line nor
// forge one: each line break, with the blanks around it, becomes "; ",
// and every other control character is escaped as in a Go string.
func flatten(msg string) string {
	if !strings.ContainsFunc(msg, isSpecial) {
		return msg
	}
	var b strings.Builder
	sep := false
	for _, r := range msg {
		switch {
		case isBreak(r):
			sep = true
			continue
		case sep && (r == ' ' || r == '\t'):
			continue
		case sep:
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			sep = false
		}
		if r == '\t' {
			b.WriteByte(' ')
		} else if isSpecial(r) {
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// isBreak reports whether r ends a line: \n, \r, \v, \f, NEL or a Unicode
// line or paragraph separator.
func isBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// isSpecial reports whether flatten must change r.
func isSpecial(r rune) bool {
	return unicode.IsControl(r) || isBreak(r)
}
