// Package migration carries live-migration streams between hosts. It joins
// package uri's addresses, package crypto's credentials and package
// channel's transports into what a hypervisor calls: QEMU's migration/
// transport layer (socket.c, channel.c, tls.c, qemu-file.c) as a Go API.
//
// A source parses a URI, starts a [Task] with [Connect], shows its
// [Phase], and gets a [Stream]; a destination does the same with [Listen]
// and [Listener.AcceptTask]. [Dial] and [Listener.Accept] are the blocking
// forms. A destination that must not let one silent peer hold up the next
// splits AcceptTask in two, [Listener.AcceptChannel] and
// [Listener.HandshakeTask], and runs handshakes side by side. Several
// channels of one migration form a session that stripes its bytes across
// them, each channel with its own TLS state: the source's
// [SourceSession] from [DialSession], the destination's
// [DestinationSession] from [Server.AcceptSession].
//
//	addr, _ := uri.Parse("tcp:dst.example:4444,tls-creds=tls0")
//	task := migration.Connect(ctx, addr, &migration.Config{Registry: reg})
//	s, err := task.Wait(ctx) // task.Phase() meanwhile: resolve, connect, ...
//	s.PutBufferNoCopy(page)
//	err = s.Close()
//
// # Transports
//
// Every transport of package uri works, in both directions:
//
//   - tcp: dialed with [channel.Dialer] (every resolved address in turn;
//     ipv4=on / ipv6=on select "tcp4" / "tcp6"; keep-alive, keep-alive-count,
//     keep-alive-idle and keep-alive-interval become a net.KeepAliveConfig;
//     mptcp asks for multipath TCP; numeric refuses host names) and
//     listened on with [channel.ListenConfig] (every resolved address; to=
//     is the end of a port range). [Listener.Addr] gives the bound port.
//   - unix (including abstract "@name") and vsock: as tcp, without options.
//     An abstract socket with QEMU's tight=off (JSON only) has its name
//     padded with NUL bytes to fill sun_path, as QEMU pads it, which is
//     another socket than the tight one; a non-abstract path that starts
//     with '@' is dialed as "./@...".
//   - exec: the command runs under /bin/sh -c, or, for an argv from JSON
//     (uri.Address.Args), the program runs without a shell by its path,
//     not looked up in PATH ([channel.StartArgv]), as QEMU runs it; its
//     stdin and stdout are the channel. The source writes to the command's
//     stdin; the destination, as QEMU's incoming exec, reads the command's
//     stdout.
//   - fd: a descriptor registered by name in [Config].FDs (QEMU's getfd) or
//     inherited by number. The task takes ownership of it.
//   - file: the source creates the file, truncates it at the offset and
//     writes from there, as QEMU does; the destination reads it from the
//     offset.
//
// exec, fd and file carry one channel each, which [Listen] opens at once
// (starting the command), so a missing file or a bad descriptor fails
// Listen; once an AcceptTask has taken the channel, later ones fail at
// once, and a [Server] whose one channel failed returns that failure from
// AcceptSession. See also "Hello" below for the one-way hello of exec and
// file.
//
// # TLS
//
// TLS is enabled by a tls-creds option, in the address or in
// [Config].TLSCreds (QEMU's migrate-set-parameters); a value set in both
// places must agree. The task looks the object up in [Config].Registry in
// the resolve phase, so a missing object fails before any connection;
// [Listen] looks the objects up as well, so a destination with a missing
// or wrong object fails before it serves.
// x509 and anon credentials run TLS ([channel.NewTLS]), psk credentials
// DTLS over the stream ([channel.NewDTLS]). The side that dials is the TLS
// client and needs endpoint=client credentials: the source, as in QEMU,
// unless [Config].DialBack reverses the connection. tls-hostname defaults
// to the host of a tcp address; a client with x509 credentials on unix,
// vsock, exec or fd, or on tcp with an empty host, needs it, as in QEMU.
// tls-authz names an authz object that the server checks the client's
// distinguished name against.
//
// # Tasks and phases
//
// A [Task] moves through the phases documented on [Phase]; each is visible
// through [Task.Phase] and the [Config].Progress callback, and each is
// bounded by a timeout of [Config] and by the context given to Connect or
// AcceptTask: cancelling it closes the socket (or ends the command) at once
// and the task fails with a *[PhaseError] naming the phase and matching
// context.Canceled.
//
// # Hello
//
// After the TLS handshake and before the migration stream, the side that
// opened the connection sends a request hello and the other side answers
// with a reply hello. Each is exactly 64 bytes, read with io.ReadFull and
// a deadline ([Config].HelloTimeout), so no stream byte is consumed and a
// silent peer cannot hold a task. The request carries a magic that is
// neither QEMU's stream magic nor its multifd magic, a version, the
// sender's direction (source or destination), its session ID, the
// channel's index (0 for the main channel, 1.. for multifd channels) and
// the session's channel count (1 to [MaxChannels]); a reply names the
// session the channel joined, or refuses it with a status code. Every
// field is validated before any is used. The byte-by-byte layout is in
// the documentation of the internal package internal/hello, with golden
// hellos in its testdata/.
//
// A request must come from the opposite direction (source versus
// destination), carry the magic and version, and, with a non-zero
// [Config].SessionID on the destination, name that session. When it does
// not, the answering side replies with a status code only, never echoing
// the peer's bytes, and both sides fail: the answering side with a
// *[HelloMismatchError] naming the field and both values, the requesting
// side with a *[RefusedError] naming its session and the reason. A
// refusal is final, except one for too many pending sessions
// ([RefusedError.Temporary]), which a later attempt may get past. A
// request of this version that breaks a rule of the layout is refused the
// same way (as a mismatch); bytes that are not a livemig request of this
// version are not answered at all. A source on exec or file sends a one-way
// request, since the other end may be a process or a file that cannot
// answer; the destination then checks it without replying, whatever its
// own transport. [Stream.SessionID] gives the session a Stream's hello
// named. [Config].Raw skips the hello entirely, to talk to QEMU itself.
//
// # Sessions
//
// A [Server] groups the channels that a [Listener] accepts by the session
// ID of their hello, like a load balancer's persistence engine: the first
// main channel creates the session and starts its timer, its multifd
// channels join it, channels of unknown, expired
// or complete sessions are refused naming the session, and
// [Server.AcceptSession] returns the session when every announced channel
// has arrived, or a *[SessionError] naming the missing channels when the
// timer fires. With [Config].DialBack the source listens and the
// destination dials; the same hello places the channels.
//
// A session belongs to the peer identity that opened it
// ([Stream.PeerIdentity]): with x509 credentials the subject DN of the
// client's certificate, with psk credentials the PSK username. Every
// other channel of the session must come from the same identity; one from
// another is refused (session of another peer), so a client that learns a session ID
// (logs print them) cannot take a slot of someone else's session. Without
// an authenticated identity (no TLS, anon credentials, a client without a
// certificate) the identity is the peer's host: its IP address for tcp,
// its CID for vsock, and "unix" for every unix-socket peer; then the
// session ID and the network are all that bind a session, and the network
// must be trusted (see SECURITY.md). A dial-back source binds its
// session to the identity of the first channel it places.
//
// What a peer can make a Server hold is bounded, per identity and in all
// ([Config].MaxPendingSessions, MaxPendingPerPeer, MaxHandshakes,
// SessionTimeout; see [Server]), and a session's stripe buffers and
// read-ahead goroutines exist only once AcceptSession has returned it.
//
// A session is an ordered byte stream striped across its main and
// multifd channels in frames. Frame k goes on channel k mod N, so the
// destination knows where to find the next one and needs no reordering
// buffer; one goroutine per channel encrypts or decrypts, so TLS runs on
// as many cores as there are channels. A frame is a 16-byte header and its
// payload:
//
//	offset size field
//	 0     2    magic, "LS" (0x4C 0x53)
//	 2     1    type: 1 data, 2 end of session
//	 3     1    reserved, zero
//	 4     4    payload length: 1..262144 (256 KiB) for data, 0 for end
//	 8     8    sequence number k, counted across all channels from 0
//
// The source fills frames with copies (Write) or with references to the
// caller's memory ([SourceSession.PutBufferNoCopy], for guest pages: no
// copy until the channel's TLS encrypts them), which it cuts only at
// multiples of [Config].PageSize, so that a page never straddles two
// frames; the destination reads frames with a copy (Read) or lends their
// memory ([DestinationSession.Next] for a page, [DestinationSession.ReadBuffer]
// for the rest of a frame).
//
// The return path is the reverse direction of the main channel:
// [DestinationSession.ReturnPath] writes what [SourceSession.ReturnPath]
// reads, as QEMU's destination sends page requests and acknowledgements
// on its return path. When one channel fails, the session shuts its
// other channels down at once, so no goroutine waits on a peer that will
// never send, and the peer learns of the failure.
//
// [SourceSession.CloseWrite] (and Close) sends an end frame on every
// channel; a
// channel that ends without one is an error wrapping io.ErrUnexpectedEOF,
// and a frame with a wrong magic, type, length or sequence number is an
// error wrapping [ErrFrame].
//
// # Stream
//
// [Stream] is QEMUFile: a 32 KiB write buffer and an iovec list of at most
// 64 slices flushed with one WriteBuffers, big-endian put and get helpers,
// [Stream.PutBufferNoCopy] for guest pages, [Stream.Peek], a sticky first
// error, counters, a rate limit that paces the wire, [Stream.Shutdown],
// [Stream.Abort] (a cut its peer reads as a reset, never as an end),
// and [Stream.ReturnPath] for the opposite direction. Its type
// documentation states the goroutine rules.
//
// # Stall watchdog
//
// A peer that stops reading, as a stopped (SIGSTOP) or hung process does,
// would hold a writer forever. Every Stream therefore has a progress
// watchdog ([Stream.SetStallTimeout], [Config].StallTimeout, 2 minutes by
// default, [StallTimeoutOff] to turn it off): a write that moves no byte
// for the stall timeout fails the Stream with a *[StallError] naming the
// write, the channel and how long nothing moved; it implements net.Error
// with Timeout() true. Progress is bytes moving, so a slow link never
// trips it: on sockets, pipes and commands the Stream writes under short
// write deadlines and goes on while the kernel takes bytes or the
// socket's send queue drains; TLS and DTLS, which cannot go on after a
// write deadline, get at most 64 KiB per write call. The channels of a
// session are Streams, so a [SourceSession] whose destination stops fails
// with the StallError from Write, Flush and Close. Reads are not watched: a
// destination waits legitimately while the source pauses (QEMU's
// pause-before-switchover), so a reader bounds its waits itself.
//
// # Performance
//
// Queueing a page with PutBufferNoCopy (on a Stream or a SourceSession) and
// flushing allocates nothing; 64 pages leave in one writev (adjacent pages
// in one iovec), and over TLS the channel packs them into full 16 KiB
// records. examples/migrate-bench measures the whole path between two
// processes against raw sockets, raw crypto/tls and QEMU. The benchmarks compare the Stream with raw net.Conn
// and raw crypto/tls in the same run:
//
//	go test ./migration -run '^$' -bench . -benchtime 2s
//	go test ./migration -run TestBenchRatios -v -args -ratios   # ratios
//
// # Errors
//
// Tasks fail with *[PhaseError]; hellos with *[HelloMismatchError] or
// *[RefusedError]; sessions with *[SessionError]. Timeouts of [Config]
// implement net.Error with Timeout() true. Streams report io.EOF at a clean
// end, io.ErrUnexpectedEOF inside a value, [ErrStreamShutdown] after
// Shutdown, a *[StallError] when a write made no progress, and otherwise
// wrap the channel's *channel.OpError.
package migration
