// Package interop holds the interoperability tests against real QEMU
// and real GnuTLS and OpenSSL tools. Every scenario runs once per
// installed QEMU (internal/qemutest.Each): Debian 12's 7.2 and, in CI,
// QEMU 10.0 from bookworm-backports, as subtests named after the version
// ("TestQEMUToLivemigTLS/qemu-10.0.2/rsa-certtool"). It has no code of
// its own; see the _test.go files:
//
//  1. QEMU source -> livemig destination over TLS (raw mode): the whole
//     stream is validated with internal/vmstream, every RAM page is checked
//     against the source's keystream, EOF is seen, QEMU reports completed.
//  2. QEMU -> migrate-proxy (unix in, TLS out) -> migrate-proxy (TLS in,
//     unix out) -> QEMU: completes, and the destination's RAM (pmemsave)
//     equals the source's.
//  3. The same with multifd, 2 channels.
//  4. QEMU migrate to exec:cat > FILE (and through migrate-proxy --to
//     file:PATH): migrate-analyze agrees with QEMU's machine type (and
//     with QEMU 7.2's section list on 7.2);
//     corrupted copies are reported at the right offset.
//  5. A TLS failure (wrong CA) between QEMU and livemig fails both sides
//     with a message naming the certificate problem.
//  6. Every TLS scenario runs with RSA keys from GnuTLS's certtool and with
//     ECDSA keys from openssl.
//
// Beyond the six: the multifd migration through the proxies also runs
// with idle and garbage connections opened to the TLS proxy first; a
// saved QEMU stream is sent by migrate-proxy (livemig's TLS client, raw)
// into a QEMU destination over TLS, which loads it with the source's RAM;
// livemig's client refuses a QEMU server certificate of another CA; and
// the demo binaries run migrate-source -> migrate-proxy -> migrate-dest
// with 2 channels, plus their error paths (one-line errors, exit codes,
// wrong CA).
//
// Without qemu-system-x86_64, certtool or openssl the tests skip with the
// reason, unless CI=true, where they fail.
package interop
