// Package channel carries byte streams for live migration: the Go
// counterpart of QEMU's QIOChannel (io/channel*.c).
//
// # The interface
//
// [Channel] is small, like net.Conn: Read, Write and Close, plus
// [Channel.WriteBuffers] (one writev for many guest pages, without copying
// them), [Channel.Shutdown] of one direction, and [Channel.Name]. Its doc
// states the rules every implementation keeps: one reader and one writer
// at a time; Close from any goroutine unblocks both with an error wrapping
// net.ErrClosed; WriteBuffers writes everything or fails, and consumes its
// argument as net.Buffers.WriteTo does.
//
// Capabilities beyond that are optional interfaces found by type
// assertion, as io.WriterTo is: [FDPasser] (SCM_RIGHTS over unix sockets),
// [ZeroCopyWriter] (MSG_ZEROCOPY with an explicit Flush), [Deadliner],
// [NetConner], and io.ReaderAt, io.WriterAt and io.Seeker on [File] and
// [Buffer].
//
// # Implementations
//
//   - [Socket]: tcp, unix and vsock stream sockets, from [Dial],
//     [Listener.Accept], [NewSocket] or [FromFile]. Options: SetNoDelay,
//     SetKeepAlive, SetCork (Linux), multipath TCP through [Dialer] and
//     [ListenConfig].
//   - [File]: a regular file from an offset, with separate read and write
//     positions ([OpenFile]).
//   - [Command]: a child process's stdin and stdout ([StartCommand]); Close
//     reaps it and reports a failure as an [ExitError] with the tail of its
//     standard error.
//   - [FilePair]: pipes, fifos and character devices, from [FromFile] or
//     [NewFilePair].
//   - [Buffer]: in memory, seekable ([NewBuffer]).
//
// The TLS and DTLS wrappers in this package turn any Channel into an
// encrypted one. Package channeltest has an in-memory pair and the
// conformance suite every implementation runs.
//
// # Encryption: TLS and DTLS
//
// NewTLS wraps any Channel with crypto/tls for x509 and anon credentials from
// package crypto; NewDTLS wraps one with pion/dtls for PSK credentials,
// which crypto/tls lacks. Neither does I/O until Handshake(ctx), which
// honours cancellation; both are Channels themselves, so everything above
// (streams, sessions, the conformance suite) runs over them unchanged.
// The trust decision (chain, CRL, host name, authz DN) is made by
// crypto.Creds.TLSConfig, so the wrappers stay thin.
//
//   - TLS.WriteBuffers copies page slices into full 16 KiB records instead of
//     sending one record per slice (QEMU 7.2 sends two records per 4 KiB page).
//   - TLSOptions.Raw is for QEMU peers, which end a stream without
//     close_notify on their main channel (every version) and on their
//     multifd channels before QEMU 10.0 (10.0 sends close_notify there,
//     migration/multifd.c multifd_send_shutdown): a clean EOF at a record
//     boundary is io.EOF, a cut inside a record is an error. Without Raw a
//     missing close_notify is an error. [TLS.CloseNotifyReceived] says
//     which clean end a Raw reader saw.
//   - A TLS 1.3 KeyUpdate from the peer is handled while one goroutine
//     reads and another writes (a migration's return path): crypto/tls
//     answers a request for one from the reading goroutine, under the
//     writer's lock, and the TLS wrapper's record batching lets that answer
//     in between the writer's records, in order. crypto/tls (Go 1.26) has
//     no API to send a KeyUpdate and never starts one itself, so livemig
//     re-keys its sending side only when the peer asks. Tested against
//     GnuTLS asking for key updates mid-stream in both roles (QEMU issue
//     1937: GnuTLS re-keys AES-GCM after about 16M records, and two QEMU
//     threads on one GnuTLS session crashed QEMU up to 10.0).
//   - Over a stream channel DTLS records are delimited by their own 13-byte
//     header (type, version, epoch, sequence, length), so no framing is
//     invented; application data is cut into pieces of at most 8155 bytes so
//     each record fits pion's 8192-byte receive buffer. NewDTLSPacket runs the
//     same over a net.PacketConn for datagram users.
//   - A stream loses and reorders nothing, so over one DTLS accepts only the
//     next record the peer sent. In each direction every record's sequence
//     number is the previous one's plus one; the epoch moves from 0 to 1 only
//     right after the peer's change_cipher_spec, and epoch 1 opens with the
//     Finished message and then carries only application data and alerts.
//     A record missing, repeated, reordered, replayed, moved to another
//     epoch, or failing authentication (altered, or copied from another
//     connection), is tampering: it ends the channel (the inner channel is
//     closed; this and every later Read and Write fail) with an [*OpError]
//     that says which, naming the epoch and sequence number expected and
//     received. pion/dtls, written for datagrams, would drop such a record
//     silently; a record it drops after the handshake is caught by counting
//     the results each record owes Read, not only by pion's log line. What
//     Read returned before the error is exactly a prefix of what the peer
//     wrote. A cut at a record boundary still reads as io.EOF, as for any
//     stream without close_notify. Over streams pion never resends a
//     handshake flight (nothing is lost, and a resent flight's epoch-0
//     records after epoch-1 ones would look like an injection), so a peer
//     built before this check, which resends flights after a second without
//     an answer, can be refused on a loaded machine.
//
// # Listening and dialing
//
// [Listen] takes a context, a network ("tcp", "tcp4", "tcp6", "unix",
// "vsock") and an address. For tcp it listens on every address the host
// resolves to, and a [ListenConfig] port range tries ports upward until one
// binds, as QEMU's "to=" does. [Listener.Accept] honours its context.
// [Dial] tries each resolved address in turn and, when all fail, returns
// every attempt's error in a *multierror.Error.
//
// # Errors
//
// Operations fail with an [*OpError] rendered like net.OpError ("write tcp
// 127.0.0.1:4444->127.0.0.1:38920: broken pipe"), whose Err is the bare
// cause: a syscall.Errno, net.ErrClosed, os.ErrDeadlineExceeded. Test with
// errors.Is. Read returns io.EOF unwrapped. [Command.Close] returns an
// [*ExitError].
//
// # Decisions
//
// Where QEMU or the design left a choice open, this package decided:
//
//   - A tcp Listener on several addresses binds the same port on each (port
//     0 takes the port the first bind picked); with a port range, the first
//     port free on every address wins.
//   - [Listener] runs one accepting goroutine per listening socket that hands
//     connections to Accept, so Accept(ctx) selects on ctx, Close and the
//     hand-off instead of the context.AfterFunc pattern: with several
//     sockets there is no single blocking call to interrupt.
//   - [Dial] always reports a total failure as a *multierror.Error, even for
//     one address, so callers can rely on errors.As.
//   - [File] keeps separate read and write positions so that one reader and
//     one writer can run at once, as the Channel rule allows. [Buffer] has
//     one position, like QEMU's buffer channel, and so is not a pipe; it runs
//     a subset of the conformance suite (see its tests).
//   - [Command] runs the child in its own process group and signals the
//     group, so a shell's background jobs do not outlive it. A child that
//     dies of SIGPIPE after Close closed its stdout is not an error.
//   - A vsock Listen on port 0 binds any free port (VMADDR_PORT_ANY).
//   - [NewTLS], [NewDTLS] and [NewDTLSPacket] take no role: a credentials
//     object is made for one endpoint (QEMU's endpoint=client|server), and
//     the wrapper is the TLS client or server that creds.Endpoint() names,
//     whichever side opened the inner connection. Checking that this is
//     the side a caller meant is the caller's business (migration checks
//     it before it connects).
//   - [TLSOptions] embeds [crypto.TLSOptions] and passes it to
//     [crypto.Creds.TLSConfig] untouched, instead of copying its fields
//     one by one: what tunes the credentials (host name, authz, minimum
//     version) is crypto's, and TLSOptions adds only what is about the
//     channel (Raw).
//   - The handshake of [TLS] and [DTLS] runs once, under a small state
//     machine (idle, running, done) whose mutex is never held across I/O.
//     Close reads the state without waiting: before a handshake it keeps
//     one from starting; during one it closes the inner channel, which
//     ends it with net.ErrClosed; after one it sends close_notify unless a
//     Write is in flight. No call spins or waits for a blocked handshake to
//     learn where it stands.
//   - A fatal alert from the peer is an [*AlertError] (code, and whether it
//     came during the handshake or before any data), wrapping what
//     crypto/tls or pion returned. crypto/tls reports a received alert
//     only as a *net.OpError "remote error" around an unexported uint8
//     type, so the code is read from that value by reflection and checked
//     against tls.AlertError's text, never parsed from a message. pion/dtls
//     turns a fatal alert after the handshake into io.EOF, so over DTLS
//     only alerts during the handshake (and non-fatal ones pion passes to
//     Read) are seen.
//   - The exported API is kept to what users and package migration call
//     (issue 12): the default grace period and the stderr tail size are
//     documented figures, not constants; File.Sync, Socket.MultipathTCP and
//     Command.CommandLine, Exited and Stderr are gone (OSFile().Sync(),
//     NetConn().(*net.TCPConn).MultipathTCP() and ExitError.Stderr cover
//     them). MaxFiles stays: it bounds ReadFiles's argument.
//   - The channel over *os.File pipes and character devices is
//     [FilePair], so that "Pipe" means one thing: channeltest.Pipe, the
//     in-memory pair.
//
// # Platforms
//
// The package is written for Linux, where all of it works. On other Unix
// systems vsock, SetCork and zero-copy are unavailable (zero-copy writes
// fall back to copying).
package channel
