// Package qemuopt holds the rules QEMU applies to option values that more
// than one livemig package parses: booleans and object IDs. uri (the
// on/off options of a migration address, the object IDs of tls-creds= and
// tls-authz=) and crypto (the -object options) both use it, so the two
// cannot drift apart.
//
// The rules are QEMU's, read in v7.2.0 and v10.0.2 (unchanged between
// them): qapi_bool_parse in qapi/qapi-util.c, which both QemuOpts
// (util/qemu-option.c) and the keyval parser behind -object
// (qapi/qobject-input-visitor.c) use, and id_wellformed in util/id.c.
package qemuopt

// ParseBool parses a boolean option value as QEMU does: "on", "yes",
// "true" and "y" are true; "off", "no", "false" and "n" are false; the
// match is exact (case-sensitive) and nothing else is a boolean. ok is
// false for any other value.
func ParseBool(s string) (v, ok bool) {
	switch s {
	case "on", "yes", "true", "y":
		return true, true
	case "off", "no", "false", "n":
		return false, true
	}
	return false, false
}

// BoolValues is the list of accepted spellings, for error messages.
const BoolValues = "on/off, yes/no, true/false, y/n"

// BadID returns the index of the first byte of id that breaks QEMU's
// object-ID rule (an ASCII letter, then ASCII letters, digits, '-', '.'
// and '_'), or -1 when id is well formed. The empty ID is bad at index 0.
func BadID(id string) int {
	if id == "" || !isAlpha(id[0]) {
		return 0
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.' && c != '_' {
			return i
		}
	}
	return -1
}

// IDRule describes the object-ID rule, for error messages.
const IDRule = "a letter, then letters, digits, '-', '.' or '_'"

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
