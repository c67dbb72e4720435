package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livemig/livemig/internal/qemuvm"
	"github.com/livemig/livemig/internal/qmp"
	"github.com/livemig/livemig/uri"
)

// The QEMU cases migrate a paused guest (-S) whose RAM is --size bytes of
// non-zero keystream (one file, written once per tool run and mapped by
// every source), from a QEMU 7.2 source, with the same migration
// parameters everywhere: max-bandwidth lifted (QEMU throttles to
// 128 MiB/s by default) and migration events on, nothing else changed.
//
// Elapsed is the wall clock from the migrate command to the migration
// being complete on both sides: the source's MIGRATION "completed" event
// and the destination's (a QEMU's own event, or the livemig drain's last
// checked byte), whichever comes later; QEMU stamps its events with the
// wall clock. CPU sums every process of the case over the migration:
// /proc deltas around it for QEMUs and proxies, the drain's own rusage.
// After the window, a destination QEMU's guest RAM is read back and every
// page checked against the keystream (qemu_verify.go).

// qemuKind is the wiring of a QEMU case.
type qemuKind int

const (
	qemuTLS         qemuKind = iota // QEMU -> QEMU, QEMU's TLS, tcp loopback
	qemuLivemigDest                 // QEMU with its TLS -> livemig drain
	qemuProxy                       // QEMU -unix-> proxy -TLS-> proxy -unix-> QEMU
	qemuPlain                       // QEMU -> QEMU over unix, no TLS
)

// qemuRunTimeout bounds one run of a QEMU case, start to end.
const qemuRunTimeout = 5 * time.Minute

// qemuCases returns the QEMU cases in table order, the baseline qemu-tls
// first. They skip, with the reason, when QEMU is not installed.
func qemuCases() []*benchCase {
	skip := func(e *env) string {
		if e.qemu.Path == "" {
			return qemuvm.Binary + " not installed; run `bash .ci/deps`"
		}
		if e.size%(1<<20) != 0 {
			return fmt.Sprintf("--size %d is not a multiple of 1 MiB, which QEMU's -m needs", e.size)
		}
		return ""
	}
	mk := func(name, baseline, about string, target float64, k qemuKind) *benchCase {
		c := &benchCase{name: name, group: "qemu", baseline: baseline, about: about, skip: skip,
			run: func(ctx context.Context, e *env) (*sample, error) { return runQEMU(ctx, e, k) }}
		if target > 0 {
			c.target = func(*env) float64 { return target }
		}
		return c
	}
	return []*benchCase{
		mk("qemu-tls", "", "QEMU -> QEMU with QEMU's own TLS (GnuTLS), tcp loopback", 0, qemuTLS),
		mk("qemu-tls-livemig-dest", "qemu-tls", "QEMU with its TLS -> livemig raw destination that checks every page", 1.0, qemuLivemigDest),
		mk("qemu-tls-proxy", "qemu-tls", "QEMU -unix-> migrate-proxy -TLS-> migrate-proxy -unix-> QEMU", 1.3, qemuProxy),
		mk("qemu-plain", "qemu-tls", "QEMU -> QEMU over unix, no TLS (for reference)", 0, qemuPlain),
	}
}

// qemuRoles returns the child roles the QEMU cases start: the drain and
// the proxy.
func qemuRoles() map[string]childFunc {
	return map[string]childFunc{drainRole: drainMain, proxyRole: proxyMain}
}

// qemuRAMFile returns the keystream RAM file of e's QEMU sources, writing
// it on first use (in /dev/shm when it exists) and removing it at exit.
func qemuRAMFile(e *env) (string, error) {
	if e.qemuRAM != "" {
		return e.qemuRAM, nil
	}
	f, err := os.CreateTemp(qemuvm.ShmDir(), "migrate-bench-ram-")
	if err != nil {
		return "", fmt.Errorf("guest RAM file: %w", err)
	}
	f.Close()
	path := f.Name()
	if err := qemuvm.WriteKeystreamFile(path, e.size); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("guest RAM file %s: %w", path, err)
	}
	e.qemuRAM = path
	e.atExit(func() { os.Remove(path) })
	return path, nil
}

// qemuRun is one run of a QEMU case: what it started, so that everything
// is measured and then ended.
type qemuRun struct {
	e     *env
	dir   string
	vms   []*qemuvm.VM
	procs []*proc
	// members are the processes whose CPU is summed, by pid (QEMUs and
	// proxies; the drain reports its own).
	members []member
}

// member is a process measured from /proc.
type member struct {
	name          string
	pid           int
	before, after usage
}

// close kills and reaps every process and removes the run's files.
func (r *qemuRun) close() {
	for _, p := range r.procs {
		p.kill()
	}
	for _, vm := range r.vms {
		vm.Close()
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// vm starts a QEMU and enables migration events on it.
func (r *qemuRun) vm(ctx context.Context, name string, opts qemuvm.Options) (*qemuvm.VM, error) {
	opts.MemSize = r.e.size
	opts.QEMU = r.e.qemu
	vm, err := qemuvm.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.vms = append(r.vms, vm)
	if err := vm.QMP.SetCapabilities(ctx, map[string]bool{"events": true}); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.members = append(r.members, member{name: name, pid: vm.Pid()})
	return vm, nil
}

// child starts a child role and returns it with the rest of its "ready"
// line.
func (r *qemuRun) child(ctx context.Context, role string, measured bool, args ...string) (*proc, string, error) {
	p, err := r.e.start(ctx, role, args...)
	if err != nil {
		return nil, "", err
	}
	r.procs = append(r.procs, p)
	rest, err := p.expect(ctx, "ready")
	if err != nil {
		return nil, "", err
	}
	if measured {
		r.members = append(r.members, member{name: role, pid: p.cmd.Process.Pid})
	}
	return p, rest, nil
}

// measure reads every member's usage into before (when first) or after.
func (r *qemuRun) measure(after bool) error {
	for i := range r.members {
		m := &r.members[i]
		u, err := procUsage(m.pid)
		if err != nil {
			return fmt.Errorf("reading the usage of %s (pid %d): %w", m.name, m.pid, err)
		}
		if after {
			m.after = u
		} else {
			m.before = u
		}
	}
	return nil
}

// qemuIncomingTLSPort starts dst listening for a TLS migration on a free
// loopback port and returns the port QEMU bound.
func qemuIncomingTLSPort(ctx context.Context, dst *qemuvm.VM) (string, error) {
	if err := dst.QMP.SetParameters(ctx, map[string]any{"tls-creds": "tls0"}); err != nil {
		return "", fmt.Errorf("destination QEMU: %w", err)
	}
	// Port 0, then the port QEMU bound: a port found free beforehand may
	// be taken by someone else before QEMU binds it.
	if err := dst.QMP.MigrateIncoming(ctx, "tcp:127.0.0.1:0"); err != nil {
		return "", fmt.Errorf("destination QEMU: %w", err)
	}
	ret, err := dst.QMP.Execute(ctx, "query-migrate", nil)
	if err != nil {
		return "", fmt.Errorf("destination QEMU: %w", err)
	}
	var info struct {
		SocketAddress []struct {
			Port string `json:"port"`
		} `json:"socket-address"`
	}
	if err := json.Unmarshal(ret, &info); err != nil || len(info.SocketAddress) == 0 || info.SocketAddress[0].Port == "" {
		return "", fmt.Errorf("destination QEMU: query-migrate says %s (%v), without the port it listens on", ret, err)
	}
	return info.SocketAddress[0].Port, nil
}

// runQEMU measures one run of the case of kind k.
func runQEMU(ctx context.Context, e *env, k qemuKind) (s *sample, err error) {
	ctx, cancel := context.WithTimeout(ctx, qemuRunTimeout)
	defer cancel()
	ram, err := qemuRAMFile(e)
	if err != nil {
		return nil, err
	}
	r := &qemuRun{e: e}
	defer r.close()
	if r.dir, err = os.MkdirTemp(e.dir, "q"); err != nil {
		return nil, err
	}
	clientCreds := "tls-creds-x509,id=tls0,dir=" + e.clientDir + ",endpoint=client"
	serverCreds := "tls-creds-x509,id=tls0,dir=" + e.serverDir + ",endpoint=server,verify-peer=on"
	srcOpts := qemuvm.Options{RAMFile: ram}

	// The destination side first, then the source, as an operator would.
	var (
		dst      *qemuvm.VM
		drain    *proc
		px1, px2 *proc
		to       string // the source's migrate URI
	)
	switch k {
	case qemuTLS:
		if dst, err = r.vm(ctx, "destination QEMU", qemuvm.Options{Incoming: true, Args: []string{"-object", serverCreds}}); err != nil {
			return nil, err
		}
		port, err := qemuIncomingTLSPort(ctx, dst)
		if err != nil {
			return nil, err
		}
		to = "tcp:127.0.0.1:" + port
		srcOpts.Args = []string{"-object", clientCreds}
	case qemuLivemigDest:
		var port string
		if drain, port, err = r.child(ctx, drainRole, false, e.serverDir, strconv.FormatInt(e.size, 10)); err != nil {
			return nil, err
		}
		to = "tcp:127.0.0.1:" + port
		srcOpts.Args = []string{"-object", clientCreds}
	case qemuProxy:
		in := filepath.Join(r.dir, "in.sock")
		if dst, err = r.vm(ctx, "destination QEMU", qemuvm.Options{Incoming: true}); err != nil {
			return nil, err
		}
		if err := dst.QMP.MigrateIncoming(ctx, "unix:"+in); err != nil {
			return nil, fmt.Errorf("destination QEMU: %w", err)
		}
		var listened string
		if px2, listened, err = r.child(ctx, proxyRole, true, "tcp:127.0.0.1:0,tls-creds=tls0", "unix:"+in, serverCreds); err != nil {
			return nil, err
		}
		a, err := uri.Parse(listened)
		if err != nil || a.Transport != uri.TCP {
			return nil, fmt.Errorf("%s (destination side) listens on %q, want a tcp address (%v)", proxyRole, listened, err)
		}
		out := filepath.Join(r.dir, "out.sock")
		if px1, _, err = r.child(ctx, proxyRole, true, "unix:"+out,
			"tcp:127.0.0.1:"+a.Inet.Port+",tls-creds=tls0,tls-hostname=localhost", clientCreds); err != nil {
			return nil, err
		}
		to = "unix:" + out
	case qemuPlain:
		in := filepath.Join(r.dir, "in.sock")
		if dst, err = r.vm(ctx, "destination QEMU", qemuvm.Options{Incoming: true}); err != nil {
			return nil, err
		}
		if err := dst.QMP.MigrateIncoming(ctx, "unix:"+in); err != nil {
			return nil, fmt.Errorf("destination QEMU: %w", err)
		}
		to = "unix:" + in
	}
	src, err := r.vm(ctx, "source QEMU", srcOpts)
	if err != nil {
		return nil, err
	}
	if len(srcOpts.Args) > 0 {
		if err := src.QMP.SetParameters(ctx, map[string]any{"tls-creds": "tls0", "tls-hostname": "localhost"}); err != nil {
			return nil, fmt.Errorf("source QEMU: %w", err)
		}
	}

	if err := r.measure(false); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := src.QMP.Migrate(ctx, to); err != nil {
		return nil, fmt.Errorf("source QEMU: migrate to %s: %w", to, err)
	}
	var (
		wg             sync.WaitGroup
		srcEnd, dstEnd time.Time
		srcErr, dstErr error
		rep            drainReport
		wctx, wcancel  = context.WithCancel(ctx)
	)
	defer wcancel()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if srcEnd, srcErr = waitMigrated(wctx, src, "source QEMU"); srcErr != nil {
			wcancel() // the other side will not finish either
		}
	}()
	go func() {
		defer wg.Done()
		if drain != nil {
			if dstErr = drain.result(wctx, &rep); dstErr == nil {
				dstEnd = time.Unix(0, rep.EndUnixNano)
			}
		} else {
			dstEnd, dstErr = waitMigrated(wctx, dst, "destination QEMU")
		}
		if dstErr != nil {
			wcancel()
		}
	}()
	wg.Wait()
	// The first failure is the cause; the other side's is its echo.
	if err := firstFailure(srcErr, dstErr); err != nil {
		return nil, fmt.Errorf("%w%s", err, r.logs(src, dst, px1, px2))
	}
	if err := r.measure(true); err != nil {
		return nil, err
	}
	info, err := queryTotals(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("source QEMU: %w", err)
	}
	if dst != nil { // the drain has checked every page itself
		if err := verifyGuestRAM(ctx, dst, r.dir, e.size); err != nil {
			return nil, fmt.Errorf("destination QEMU: %w", err)
		}
	}
	end := srcEnd
	if dstEnd.After(end) {
		end = dstEnd
	}
	s = &sample{Bytes: e.size, Elapsed: end.Sub(start), QEMUTotal: time.Duration(info.TotalTime) * time.Millisecond}
	if info.RAM != nil {
		s.QEMUMbps = info.RAM.MBps
	}
	noTotal := ""
	if info.TotalTime <= 0 {
		// Said rather than left out: the table would otherwise just lack
		// QEMU's figures for this run.
		noTotal = fmt.Sprintf("source QEMU's query-migrate gave no total-time (status %q)", info.Status)
	}
	byName := map[string]usage{}
	for _, m := range r.members {
		s.CPU += m.after.CPU - m.before.CPU
		byName[m.name] = m.after
	}
	// Peak RSS: the side's livemig process where there is one, else its
	// QEMU, whose guest RAM the budget allows for.
	s.RSSSrc, s.RAMSrc = byName["source QEMU"].MaxRSS, e.size
	switch {
	case px1 != nil:
		s.RSSSrc, s.RAMSrc = memberRSS(r.members, px1), 0
		s.RSSDst, s.RAMDst = memberRSS(r.members, px2), 0
	case drain != nil:
		s.CPU += rep.Usage.CPU
		s.RSSDst, s.RAMDst = rep.Usage.MaxRSS, 0
	default:
		s.RSSDst, s.RAMDst = byName["destination QEMU"].MaxRSS, e.size
	}
	s.Note = joinNotes(r.note(dst, px1, px2), noTotal)
	return s, nil
}

// memberRSS returns the peak RSS measured for p.
func memberRSS(ms []member, p *proc) int64 {
	for _, m := range ms {
		if m.pid == p.cmd.Process.Pid {
			return m.after.MaxRSS
		}
	}
	return 0
}

// waitMigrated waits for vm's MIGRATION event with a final status and
// returns its time stamp; a failed or cancelled migration is an error with
// QEMU's description.
func waitMigrated(ctx context.Context, vm *qemuvm.VM, who string) (time.Time, error) {
	for {
		ev, err := vm.QMP.WaitEvent(ctx, "MIGRATION")
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", who, err)
		}
		var data struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return time.Time{}, fmt.Errorf("%s: MIGRATION event %s: %v", who, ev.Data, err)
		}
		switch data.Status {
		case "completed":
			return ev.Timestamp, nil
		case "failed", "cancelled":
			desc := ""
			if info, err := vm.QMP.QueryMigrate(ctx); err == nil && info.ErrorDesc != "" {
				desc = ": " + info.ErrorDesc
			}
			return time.Time{}, fmt.Errorf("%s: migration %s%s", who, data.Status, desc)
		}
	}
}

// firstFailure returns what made a run fail, or nil when both sides
// completed: a side's own error rather than the cancellation that the
// other side's failure caused in it.
func firstFailure(srcErr, dstErr error) error {
	switch {
	case srcErr == nil && dstErr == nil:
		return nil
	case srcErr == nil:
		return dstErr
	case dstErr == nil:
		return srcErr
	case errors.Is(srcErr, context.Canceled) && !errors.Is(dstErr, context.Canceled):
		return dstErr
	case errors.Is(dstErr, context.Canceled) && !errors.Is(srcErr, context.Canceled):
		return srcErr
	}
	return errors.Join(srcErr, dstErr)
}

// logs returns what the QEMUs and proxies said, for an error message.
func (r *qemuRun) logs(src, dst *qemuvm.VM, px ...*proc) string {
	var b strings.Builder
	for _, x := range []struct {
		who string
		vm  *qemuvm.VM
	}{{"source QEMU", src}, {"destination QEMU", dst}} {
		if x.vm != nil {
			if l := x.vm.Log(); l != "" {
				fmt.Fprintf(&b, "; %s says: %s", x.who, l)
			}
		}
	}
	for i, p := range px {
		if p != nil {
			if l := p.stderr.String(); l != "" {
				fmt.Fprintf(&b, "; proxy %d says: %s", i+1, l)
			}
		}
	}
	return b.String()
}

// note returns a remark on anything odd a successful run left in the
// logs: the destination QEMU's complaints, a proxy's failed connection.
// queryTotals runs query-migrate on a source whose migration has
// completed. QEMU 7.2 sends the MIGRATION "completed" event before it
// computes total-time, so a fast migration can be queried in between and
// read total-time 0: ask again for up to a second.
func queryTotals(ctx context.Context, vm *qemuvm.VM) (*qmp.MigrationInfo, error) {
	for i := 0; ; i++ {
		info, err := vm.QMP.QueryMigrate(ctx)
		if err != nil || info.TotalTime > 0 || i == 50 {
			return info, err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return info, nil
		}
	}
}

func (r *qemuRun) note(dst *qemuvm.VM, px ...*proc) string {
	var notes []string
	if dst != nil {
		if l := dst.Log(); l != "" {
			first, _, _ := strings.Cut(l, "\n")
			notes = append(notes, "destination QEMU: "+clip(first, 80))
		}
	}
	for i, p := range px {
		if p == nil {
			continue
		}
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, "failed") || strings.Contains(l, "refused") {
				notes = append(notes, fmt.Sprintf("proxy %d: %s", i+1, clip(l, 80)))
				break
			}
		}
	}
	return strings.Join(notes, "; ")
}

// clip shortens s to n bytes with an ellipsis.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
