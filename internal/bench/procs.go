package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the bench started and measures.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closed by stop: children of ours exit on EOF
	output *tailBuffer    // the last bytes of stdout and stderr
	done   chan struct{}  // closed once the process was waited for
	err    error          // Wait's error, set before done closes
}

// startProc runs path with args and extra environment. The child gets a
// pipe as stdin that closes when the bench exits (our own children exit on
// its EOF) and SIGKILL when the bench's thread dies (Pdeathsig). stdout, when
// not nil, receives the child's stdout; otherwise it joins the tail buffer.
func startProc(name, path string, args, env []string, stdout io.Writer) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, output: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.output
	cmd.Stdout = p.output
	if stdout != nil {
		cmd.Stdout = stdout
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.stdin = in
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, with its output's tail.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.err, p.output.String())
	default:
		return nil
	}
}

// stop ends the process: EOF on stdin and SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop() {
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// childAddrs is the line our own children print on stdout once they listen.
type childAddrs struct {
	Addr  string `json:"addr"`          // the service (plain TCP)
	TLS   string `json:"tls,omitempty"` // the service over TLS, for the roles that serve it
	Debug string `json:"debug"`         // expvar's /debug/vars
}

// startChild re-executes the bench binary in role and waits for the line
// with its addresses.
func startChild(ctx context.Context, role string, env ...string) (*proc, childAddrs, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, childAddrs{}, fmt.Errorf("find own executable: %w", err)
	}
	lw := &firstLine{line: make(chan string, 1)}
	p, err := startProc(role, self, nil, append(env, childEnv+"="+role), lw)
	if err != nil {
		return nil, childAddrs{}, err
	}
	lines := lw.line
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case line := <-lines:
		var a childAddrs
		if line == "" {
			p.stop()
			return nil, a, fmt.Errorf("child %s printed no address: %w", role, p.exited())
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil || a.Addr == "" {
			p.stop()
			return nil, a, fmt.Errorf("child %s printed %q, want its addresses as JSON", role, line)
		}
		return p, a, nil
	case <-p.done:
		return nil, childAddrs{}, fmt.Errorf("child %s printed no address: %w", role, p.exited())
	case <-ctx.Done():
		p.stop()
		return nil, childAddrs{}, fmt.Errorf("child %s: no address in time: %w", role, ctx.Err())
	}
}

// firstLine hands the first line written to it to line and drops the rest
// (our children write nothing else on stdout; they log to stderr).
type firstLine struct {
	mu   sync.Mutex
	line chan string
	buf  []byte
	sent bool
}

func (w *firstLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.sent = true
		w.line <- string(w.buf[:i])
		w.buf = nil
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU returns the user plus system CPU time the process has used, all
// threads included (fields 14 and 15 of /proc/<pid>/stat).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' in /proc/<pid>/stat")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/<pid>/stat has %d fields after the name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse utime/stime: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// memStatus is the resident memory of a process, in bytes.
type memStatus struct {
	rss  uint64 // VmRSS: now
	peak uint64 // VmHWM: the peak since start or since resetPeak
}

func procMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, fmt.Errorf("read memory status: %w", err)
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (memStatus, error) {
	var m memStatus
	var seen int
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", name, line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("parse %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.peak = kb << 10
		}
		seen++
	}
	if seen != 2 {
		return m, errors.New("VmRSS or VmHWM missing from /proc/<pid>/status")
	}
	return m, nil
}

// resetPeak sets the process's VmHWM back to its current RSS (Linux 4.0+;
// needs the right to write /proc/<pid>/clear_refs). When it fails, peaks
// accumulate over the process's life and the report says so.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the target binds it; the readiness probe then fails loudly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// raiseFileLimit lifts RLIMIT_NOFILE to at least want (or to the hard limit
// when it cannot be raised further). Setting it explicitly also makes the
// children inherit it: Go restores the original soft limit for children
// only when the program never called Setrlimit itself.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}
