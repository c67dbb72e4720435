package uri

import (
	"math"
	"math/big"
	"strconv"
)

// suffixMul returns the multiplier of a size suffix, or 0 if c is none.
// As in QEMU's suffix_mul (util/cutils.c), suffixes are case-insensitive
// and binary: k is 1024, not 1000.
func suffixMul(c byte) int64 {
	switch c {
	case 'b', 'B':
		return 1
	case 'k', 'K':
		return 1 << 10
	case 'm', 'M':
		return 1 << 20
	case 'g', 'G':
		return 1 << 30
	case 't', 'T':
		return 1 << 40
	case 'p', 'P':
		return 1 << 50
	case 'e', 'E':
		return 1 << 60
	}
	return 0
}

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseSize parses the SIZE of file:PATH,offset=SIZE the way QEMU's
// qemu_strtosz (util/cutils.c, QEMU 8.1 and later) does, with the
// narrowings listed in the package documentation. On failure it returns the
// offset of the problem within s, a reason, and strconv.ErrRange for
// overflow.
func parseSize(s string) (n int64, bad int, reason string, cause error) {
	const expect = "expected a size such as 4096, 64k, 1.5G or 0x1000"
	if s == "" {
		return 0, 0, "empty offset: " + expect, nil
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return parseHexSize(s)
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	whole, frac := s[:i], ""
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		frac, i = s[i+1:j], j
	}
	if whole == "" && frac == "" {
		return 0, 0, "invalid offset " + strconv.Quote(s) + ": " + expect, nil
	}
	mul := int64(1)
	if i < len(s) {
		if mul = suffixMul(s[i]); mul == 0 {
			return 0, i, "invalid character " + strconv.QuoteRune(rune(s[i])) +
				" in offset: expected digits, '.', or one suffix of b, k, M, G, T, P, E", nil
		}
		i++
	}
	if i < len(s) {
		return 0, i, "unexpected " + strconv.Quote(s[i:]) + " after the offset: expected one suffix at the end", nil
	}

	// value = (whole.frac) * mul, rounded half up, computed exactly.
	num, _ := new(big.Int).SetString(whole+frac+"0", 10) // the "0" makes "" parse
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))+1), nil)
	num.Mul(num, big.NewInt(mul))
	if mul == 1 && new(big.Int).Rem(num, den).Sign() != 0 {
		return 0, 0, "fraction in offset " + strconv.Quote(s) +
			" without a scale suffix: expected k, M, G, T, P or E after it", nil
	}
	num.Lsh(num, 1).Add(num, den)
	den.Lsh(den, 1)
	num.Quo(num, den)
	if !num.IsInt64() {
		return 0, 0, "offset " + s + " overflows: expected at most 9223372036854775807 bytes", strconv.ErrRange
	}
	return num.Int64(), 0, "", nil
}

// parseHexSize parses "0x" followed by hex digits, with neither fraction
// nor suffix (QEMU rejects both on hex sizes since 8.0).
func parseHexSize(s string) (int64, int, string, error) {
	for i := 2; i < len(s); i++ {
		c := s[i]
		switch {
		case isHex(c):
		case c == '.':
			return 0, i, "fraction in hex offset: expected hex digits only", nil
		case suffixMul(c) != 0:
			return 0, i, "suffix on hex offset: expected hex digits only", nil
		default:
			return 0, i, "invalid character " + strconv.QuoteRune(rune(c)) + " in hex offset: expected hex digits", nil
		}
	}
	if len(s) == 2 {
		return 0, 2, "missing hex digits after 0x: expected a size such as 0x1000", nil
	}
	n, err := strconv.ParseUint(s[2:], 16, 64)
	if err != nil || n > math.MaxInt64 {
		return 0, 0, "offset " + s + " overflows: expected at most 0x7fffffffffffffff bytes", strconv.ErrRange
	}
	return int64(n), 0, "", nil
}
