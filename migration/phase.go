package migration

import "fmt"

// Phase is the step a [Task] is in. A task moves forward only:
//
//	resolve ──> connect ──> tls-handshake ──> hello ──> ready
//	   │           │              │             │
//	   └───────────┴──────────────┴─────────────┴─────> failed
//
// tls-handshake is skipped without TLS credentials and hello is skipped with
// [Config].Raw; the task then goes straight to the next phase. ready and
// failed are final. Every transition is reported to [Config].Progress.
//
// resolve checks the configuration, looks the credentials and authz objects up
// in the registry and picks the network; connect dials, accepts, starts the
// command or opens the file (host names are resolved here by the dialer);
// tls-handshake runs the TLS or DTLS handshake; hello exchanges the
// livemig hello (see the package documentation).
type Phase int32

// The phases of a Task, in order.
const (
	PhaseResolve Phase = iota
	PhaseConnect
	PhaseTLSHandshake
	PhaseHello
	PhaseReady
	PhaseFailed
)

var phaseNames = [...]string{
	PhaseResolve:      "resolve",
	PhaseConnect:      "connect",
	PhaseTLSHandshake: "tls-handshake",
	PhaseHello:        "hello",
	PhaseReady:        "ready",
	PhaseFailed:       "failed",
}

// String returns the phase's name as the package documentation spells it,
// such as "tls-handshake".
func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", int32(p))
}

// Final reports whether p is PhaseReady or PhaseFailed.
func (p Phase) Final() bool { return p == PhaseReady || p == PhaseFailed }
