package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process: the backend or the gateway.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser // closed by stop: the backend child exits on EOF
	logs  *logScan       // stdout and stderr
	done  chan struct{}  // closed once the process was waited for
	err   error          // Wait's error, set before done closes
}

// startProc runs path with args and extra environment. The child gets
// SIGKILL when this process's thread dies (Pdeathsig), and a stdin pipe that
// closes when this process exits. Every line it writes goes to logs; the
// first line of stdout also goes to first when not nil.
func startProc(name, path string, args, env []string, logs *logScan, first chan<- string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, logs: logs, done: make(chan struct{})}
	cmd.Stderr = logs
	cmd.Stdout = logs
	if first != nil {
		cmd.Stdout = &firstLine{next: logs, line: first}
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

// exited returns nil while the process runs, else what ended it.
func (p *proc) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return fmt.Errorf("%s exited", p.name)
		}
		return fmt.Errorf("%s exited: %w", p.name, p.err)
	default:
		return nil
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop ends the process gently: EOF on stdin and SIGTERM, then SIGKILL after
// grace. It reports whether the process ended by itself, and its error.
func (p *proc) stop(grace time.Duration) (clean bool, err error) {
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true, p.err
	case <-t.C:
		p.kill()
		return false, p.err
	}
}

// firstLine hands the first line written to it to line, and every byte to
// next.
type firstLine struct {
	next io.Writer
	line chan<- string
	buf  []byte
	sent bool
}

func (w *firstLine) Write(p []byte) (int, error) {
	if !w.sent {
		w.buf = append(w.buf, p...)
		if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
			w.sent = true
			w.line <- string(w.buf[:i])
			w.buf = nil
		}
	}
	return w.next.Write(p)
}

// logScan reads a child's output line by line: it counts panics and fatal
// errors (and keeps the first lines of the first one), counts log lines by
// level and message, and keeps the last bytes for error reports. It is
// safe for concurrent use; one logScan may serve several processes in turn.
type logScan struct {
	mu      sync.Mutex
	partial []byte
	tail    []byte
	panics  int
	trace   []string       // the first panic's lines
	inTrace int            // lines of the first panic still to keep
	levels  map[string]int // "WARN" → lines
	msgs    map[string]int // "WARN gateway: ..." → lines
}

const tailMax = 16 << 10

// panicLine matches the first line of a Go panic or fatal error, and the
// header of a goroutine's stack in a traceback.
var panicLine = regexp.MustCompile(`^(panic: |fatal error: |goroutine \d+ \[)`)

// slogLine pulls level and msg out of a slog text line.
var slogLine = regexp.MustCompile(`level=(\w+) msg=("(?:[^"\\]|\\.)*"|\S+)`)

func newLogScan() *logScan {
	return &logScan{levels: map[string]int{}, msgs: map[string]int{}}
}

func (s *logScan) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tail = append(s.tail, p...)
	if over := len(s.tail) - tailMax; over > 0 {
		s.tail = append(s.tail[:0], s.tail[over:]...)
	}
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) > 1<<20 { // a line this long is not a log line
		s.line(string(s.partial))
		s.partial = s.partial[:0]
	}
	return len(p), nil
}

func (s *logScan) line(l string) {
	if s.inTrace > 0 {
		s.trace = append(s.trace, l)
		s.inTrace--
	}
	if m := panicLine.FindString(l); m != "" {
		if !strings.HasPrefix(m, "goroutine ") {
			s.panics++
			if s.panics == 1 {
				s.trace = append(s.trace, l)
				s.inTrace = 30
			}
		} else if s.panics == 0 {
			// A traceback without a panic line before it (a dump on
			// SIGQUIT, or a panic line we did not recognise) counts too.
			s.panics++
			s.trace = append(s.trace, l)
			s.inTrace = 30
		}
		return
	}
	if m := slogLine.FindStringSubmatch(l); m != nil {
		s.levels[m[1]]++
		if m[1] != "INFO" && m[1] != "DEBUG" {
			s.msgs[m[1]+" "+strings.Trim(m[2], `"`)]++
		}
	}
}

// scanned is what a logScan saw.
type scanned struct {
	panics int
	trace  []string
	levels map[string]int
	msgs   map[string]int
	tail   string
}

func (s *logScan) result() scanned {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := scanned{panics: s.panics, trace: append([]string(nil), s.trace...), levels: map[string]int{}, msgs: map[string]int{}, tail: string(s.tail)}
	for k, v := range s.levels {
		r.levels[k] = v
	}
	for k, v := range s.msgs {
		r.msgs[k] = v
	}
	return r
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the child binds it; the child's start then fails loudly.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
