// Package qemuvm starts real QEMU virtual machines (qemu-system-x86_64,
// TCG) and drives them through QMP, for tests (through internal/qemutest)
// and for tools such as examples/migrate-bench.
//
// A source VM's RAM is a memory-backend-file holding a deterministic
// keystream (AES-128-CTR of zeros under a fixed key, see [Keystream]), so
// whoever receives its migration can check every page without storing
// expectations. The file is written at start, in /dev/shm when that
// directory exists (so it costs no disk I/O), or it is an existing
// keystream file ([Options.RAMFile]) that several VMs map one after the
// other. Sources start with -S: the guest never runs, so its RAM does not
// change. A destination VM has RAM of its own and waits with -incoming
// defer until the caller runs migrate-incoming.
//
// Every VM is a child process killed with SIGKILL if this process dies
// (Pdeathsig) and when the context given to [Start] ends; [VM.Close] kills
// and reaps it and removes its files (QMP socket, RAM file it wrote,
// QEMU's log).
package qemuvm
