// Package hello is the wire format of livemig's hello: the 64 bytes each
// side of a channel sends after the TLS handshake and before the
// migration stream, so that the accepting side can place the channel in
// its session. Package migration runs the exchange (who sends what, and
// what a refusal means to its users); this package only encodes and
// validates one hello.
//
// # Layout
//
// A hello is exactly [Size] bytes, read with io.ReadFull, so no stream
// byte is consumed. All integers are big-endian:
//
//	offset size field
//	 0     4    magic, "LMIG" (0x4C 0x4D 0x49 0x47); neither QEMU's stream
//	            magic 0x5145564D nor its multifd magic 0x11223344
//	 4     1    version, 1
//	 5     1    kind: 1 request, 2 reply
//	 6     1    role: 0 main, 1 multifd (2 and 3, once return-path and
//	            postcopy, are refused as unknown)
//	 7     1    flags: bit 0 set when the sender is the migration source,
//	            bit 1 set in a request that expects no reply (one-way);
//	            other bits must be zero
//	 8     16   session ID (a reply carries the session the channel joined)
//	24     2    channel index: 0 for the main channel, 1.. for the others
//	26     2    channel count of the session, 1..256
//	28     2    status: 0 in requests; in replies 0 ok, 1 unknown
//	            session, 2 expired session, 3 duplicate channel,
//	            4 mismatch, 5 refused, 6 session of another peer,
//	            7 too many pending sessions
//	30     2    reserved, zero
//	32     8    capability bits, carried through unchanged (none defined)
//	40     24   reserved, zero
//
// A reader validates every field before it uses any
// ([Hello.UnmarshalBinary]): reserved bytes must be zero, a request and an
// accepting reply must have 1 <= count <= 256, index < count and index 0
// exactly for the main channel, and a refusal (a reply with a non-zero
// status) carries its status and role only: no session, index, count or
// capabilities.
//
// testdata/ holds golden hellos; a change to them is a change of the wire
// format and needs a new [Version].
package hello
