package crypto

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
)

// attrNames are the attribute type names GnuTLS prints (lib/x509 OID
// table), checked against `certtool -i` in the interop tests.
var attrNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.17":                   "postalCode",
	"2.5.4.12":                   "title",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.42":                   "givenName",
	"2.5.4.4":                    "surName",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
	"1.2.840.113549.1.9.1":       "EMAIL",
}

// CertDN returns the subject distinguished name of cert as RFC 4514 and
// GnuTLS's gnutls_x509_crt_get_dn2 print it (and so the "Subject:" line
// of `certtool -i`): the identity an authz object checks. See the package
// doc for the format.
func CertDN(cert *x509.Certificate) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil || len(rest) != 0 {
		return cert.Subject.String()
	}
	return formatDN(rdns)
}

// crlIssuerDN returns the issuer DN of crl as CertDN prints a subject.
func crlIssuerDN(crl *x509.RevocationList) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(crl.RawIssuer, &rdns); err != nil || len(rest) != 0 {
		return crl.Issuer.String()
	}
	return formatDN(rdns)
}

// formatDN prints a distinguished name as RFC 4514 and GnuTLS's
// gnutls_x509_crt_get_dn2 do: RDNs from last to first joined by ",",
// attributes of one RDN joined by "+" in their encoded order, GnuTLS's
// attribute names (see the package doc), string values with RFC 4514
// escapes, and other values as "#" and the hex of their DER encoding.
func formatDN(rdns pkix.RDNSequence) string {
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if i != len(rdns)-1 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := atv.Type.String()
			name, known := attrNames[oid]
			if !known {
				name = oid
			}
			b.WriteString(name)
			b.WriteByte('=')
			s, isString := atv.Value.(string)
			if !known || !isString {
				der, err := asn1.Marshal(atv.Value)
				if err != nil {
					b.WriteString("#")
					continue
				}
				b.WriteByte('#')
				b.WriteString(hex.EncodeToString(der))
				continue
			}
			escapeDNValue(&b, s)
		}
	}
	return b.String()
}

func escapeDNValue(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';':
			b.WriteByte('\\')
			b.WriteByte(c)
		case (c == ' ' || c == '#') && i == 0, c == ' ' && i == len(s)-1:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == 0:
			b.WriteString(`\00`)
		default:
			b.WriteByte(c)
		}
	}
}
