// Package migration carries live-migration streams: it joins package uri's
// addresses, package crypto's credentials and package channel's transports
// into tasks that set channels up, and the Stream that carries a migration
// over them (QEMU's migration/ transport layer and QEMUFile).
package migration
