// Package crypto holds livemig's credentials objects: x509 certificate
// directories, PSK key files and anonymous credentials, plus the authz
// objects that decide which client identities a server accepts. Objects are
// spelled like QEMU's -object option so operators can reuse their
// configuration, and live in a [Registry] by ID.
//
// # Objects
//
// [ParseObject] understands
//
//	tls-creds-x509,id=ID,dir=DIR,endpoint=server|client,verify-peer=on|off[,priority=P][,sanity-check=on|off]
//	tls-creds-psk,id=ID,dir=DIR,endpoint=server|client[,username=NAME][,priority=P]
//	tls-creds-anon,id=ID,endpoint=server|client[,priority=P]
//	authz-simple,id=ID,identity=DN
//	authz-list,id=ID[,policy=deny|allow],rules.N.match=PATTERN,rules.N.policy=allow|deny[,rules.N.format=exact|glob]
//
// Booleans accept on/off, yes/no, true/false and y/n, exactly as QEMU's
// qapi_bool_parse does (the one rule lives in internal/qemuopt, shared
// with the uri package); IDs follow QEMU's id_wellformed (a letter, then
// letters, digits, '-', '.' or '_'). ",," is a literal comma inside a
// value, as in QEMU. Unknown keys, a missing id, a repeated key and a
// value QEMU would reject are errors that name the key. endpoint defaults
// to client and verify-peer to on, as in QEMU.
//
// [ParseObject] (and [Registry.AddObject], which adds its result) is the
// only way from a -object string to an object; [NewX509Creds],
// [NewPSKCreds], [NewAnonCreds], [NewAuthzSimple] and [NewAuthzList] build
// the same objects from Go values.
//
// priority= (a GnuTLS priority string) is accepted so that QEMU command
// lines parse, and otherwise ignored: crypto/tls chooses its own cipher
// suites. It is not part of the Go API: a value that is never applied
// would only mislead. A [Registry] with a Logf says once, when such an
// object is added, that it is ignored.
//
// # x509 directories
//
// The directory layout is QEMU's: ca-cert.pem, server-cert.pem and
// server-key.pem (server), client-cert.pem and client-key.pem (client;
// optional, needed when the server verifies peers), and an optional
// ca-crl.pem honoured by the server: it may hold one CRL per CA, as
// GnuTLS reads it, and a client whose certificate, or any intermediate
// of its chain, one of them lists is refused. Private
// keys may be PKCS#1, PKCS#8 or SEC 1 (EC) PEM; encrypted keys are refused.
//
// Loading checks what QEMU's sanity checks check (qcrypto_tls_creds_x509_sanity_check
// and its helpers in crypto/tlscredsx509.c, the same in QEMU v7.2.0 and
// v10.0.x), so that a directory livemig loads also loads in QEMU. Every
// failure is a [*CheckError] naming the file and the check, and gives the
// cause in QEMU's words ("has expired", "usage does not permit key
// encipherment", ...):
//
//   - each file is readable, at most 1 MiB, and holds the PEM it should;
//   - a private key readable by group or others is refused unless
//     [X509Options.InsecureKeyPermissions] is set;
//   - the private key matches the certificate;
//   - with sanity checks on (the default), for every CA certificate of
//     ca-cert.pem: in its validity window; basic constraints present and
//     CA=true; keyCertSign when it has a key usage extension;
//   - for the own certificate: in its validity window; not a CA; when it
//     has a key usage extension, digitalSignature and, when that extension
//     is critical, keyEncipherment (QEMU 7.2.0 to 10.0 refuse a critical
//     key usage without it even for ECDSA keys; crypto/x509 always writes
//     the extension critical, so sign leaves with
//     x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment, as
//     crypto/cryptotest does); serverAuth (server) or clientAuth (client)
//     when it has an extended key usage extension; and it verifies, alone,
//     against the certificates of ca-cert.pem (an intermediate CA belongs
//     in ca-cert.pem, as QEMU wants);
//   - each CRL of ca-crl.pem is signed by a CA of ca-cert.pem (checked
//     with sanity checks off too), is not dated in the future (thisUpdate)
//     and, when it has a nextUpdate, has not expired: an out-of-date CRL
//     is refused at load time (check "validity") rather than silently
//     trusted.
//
// QEMU enforces a key usage or extended key usage only when the extension
// is critical; livemig is stricter for digitalSignature, keyCertSign and
// the extended key usage, which a TLS peer checks anyway.
//
// # Trust and the interop traps
//
// [Creds.TLSConfig] builds the whole trust decision, so the TLS channel is
// a thin wrapper. A server requests a client certificate WITHOUT a list of
// CA names (a GnuTLS client with an RSA key sends no certificate when the
// request lists names) and verifies the chain, the validity, the CRL and
// the authz object itself in VerifyConnection. A server sends no TLS 1.3
// session tickets (they broke QEMU sources mid-stream; migration has no use
// for resumption). A client without a host name to check fails, as QEMU's
// does, unless verify-peer=off.
//
// Host names are matched against the server certificate's subjectAltName
// (DNS names and IP addresses), as crypto/x509 does; unlike GnuTLS it never
// falls back to the subject CN, so a certificate that names its host only in
// the CN must be reissued with a dns_name (certtool) or subjectAltName
// (openssl). Authz on a server needs verify-peer=on: without a verified
// certificate there is no identity, and TLSConfig refuses the combination.
//
// # Identities
//
// A client's identity is the subject distinguished name of its verified
// certificate, formatted by [CertDN] as RFC 4514 does and as GnuTLS's
// gnutls_x509_crt_get_dn2 (and so `certtool -i`, the "Subject:" line) print
// it: relative distinguished names from the last to the first
// ("CN=client.example.com,O=Example,C=GB"), the attribute names GnuTLS uses
// (CN, C, O, OU, L, ST, DC, UID, EMAIL, serialNumber, street, postalCode,
// title, givenName, surName, ...; others as dotted OIDs with a #hex value),
// and backslash escapes for the characters RFC 4514 reserves. An operator
// can copy the Subject line of `certtool -i` into authz-simple's identity.
// PSK identities are the username.
//
// # PSK keys
//
// No exported API returns the keys of a tls-creds-psk object: the DTLS
// channel reads them through an internal package of this module. A
// program that needs the key itself reads keys.psk.
//
// # Hot reload
//
// [Creds.Reload] (and [Registry.Reload], [Registry.Watch]) re-read an
// object's files. The new material is swapped in atomically only when it
// loads and passes every check; otherwise the old material stays and the
// error is returned. Configurations from TLSConfig pick the current
// material at each handshake (GetConfigForClient, GetClientCertificate,
// VerifyConnection), so new handshakes use the new files and established
// sessions keep theirs.
//
// # Anonymous credentials
//
// tls-creds-anon gives encryption WITHOUT authentication: anyone can be the
// peer. crypto/tls has no anonymous Diffie-Hellman suites, so anon servers
// present a throw-away self-signed certificate that anon clients do not
// verify; it does not interoperate with QEMU's tls-creds-anon. It is never
// chosen by default.
//
// # Concurrency
//
// [Creds], [Registry] and the authz objects are safe for concurrent use.
package crypto
