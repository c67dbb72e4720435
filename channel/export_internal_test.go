package channel

// DTLSWithoutRejectForTest makes d, a stream DTLS not yet handshaken,
// ignore pion's log line about a record that failed to decrypt, so that a
// test sees the discard check's probes catch the drop on their own (see
// dtls_discard.go). External tests of this package reach it.
func DTLSWithoutRejectForTest(d *DTLS) { d.noReject = true }

// CommandExitedForTest returns a channel closed once c's child has been
// reaped.
func CommandExitedForTest(c *Command) <-chan struct{} { return c.exitedChan() }

// CommandStderrForTest returns the tail of c's child's standard error so
// far.
func CommandStderrForTest(c *Command) []byte { return c.stderrSoFar() }
