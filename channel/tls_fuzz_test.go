package channel

import "testing"

// FuzzTLSRecordTracker feeds a stream to the TLS record-boundary tracker
// in pieces cut at fuzzed points and compares its verdict (at a boundary
// or not) with a whole-stream parse.
func FuzzTLSRecordTracker(f *testing.F) {
	f.Add([]byte{}, uint8(1))                                  // nothing read: at a boundary
	f.Add([]byte{23, 3, 3, 0, 2, 'h', 'i'}, uint8(3))          // one whole record
	f.Add([]byte{23, 3, 3, 0, 2, 'h'}, uint8(1))               // cut inside the body
	f.Add([]byte{23, 3, 3}, uint8(2))                          // cut inside the header
	f.Add([]byte{23, 3, 3, 0, 0, 21, 3, 3, 0, 1, 0}, uint8(4)) // empty record then an alert
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		c := &tlsRawConn{}
		n := int(step%16) + 1
		for rest := data; len(rest) > 0; {
			k := min(n, len(rest))
			c.track(rest[:k])
			rest = rest[k:]
		}
		pos := 0
		for pos+5 <= len(data) {
			pos += 5 + (int(data[pos+3])<<8 | int(data[pos+4]))
		}
		want := pos == len(data)
		if got := c.hdrN == 0 && c.bodyLeft == 0; got != want {
			t.Fatalf("tracker says boundary=%v, parse says %v (pos %d of %d)", got, want, pos, len(data))
		}
	})
}
