package testutil

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/greetd"
)

// greetdProcessEnv, set to a listen address, makes a test binary serve
// greetd there instead of running tests (see [RunGreetdProcess]).
const greetdProcessEnv = "CORSGATE_TEST_GREETD_PROCESS"

// RunGreetdProcess serves greetd and exits when the test binary was started
// by [StartGreetdProcess]; otherwise it returns at once. Call it first in
// the TestMain of a package that starts greetd processes. Replicas that a
// test SIGKILLs must be processes of their own.
func RunGreetdProcess() {
	addr := os.Getenv(greetdProcessEnv)
	if addr == "" {
		return
	}
	if err := serveGreetdProcess(addr); err != nil {
		fmt.Fprintln(os.Stderr, "greetd process:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveGreetdProcess serves greetd on addr until SIGTERM or EOF on stdin,
// after printing the address it listens on.
func serveGreetdProcess(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(logger)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if _, err := fmt.Println(lis.Addr().String()); err != nil {
		return err
	}
	return greetd.Serve(ctx, greetd.NewServer(nil), lis, time.Second, logger)
}

// GreetdProcess is greetd in a process of its own: the test binary run
// again, serving (see [RunGreetdProcess]).
type GreetdProcess struct {
	// Addr is the address it listens on.
	Addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// StartGreetdProcess starts a greetd process listening on addr
// ("127.0.0.1:0" for any port, or the address of one that was killed); it
// is stopped at the test's end.
func StartGreetdProcess(tb testing.TB, addr string) *GreetdProcess {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), greetdProcessEnv+"="+addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &GreetdProcess{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tb.Fatalf("greetd process printed no address: %v", err)
	}
	p.Addr = strings.TrimSpace(line)
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(p.Stop)
	return p
}

// Kill sends SIGKILL and waits for the process to end.
func (p *GreetdProcess) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop ends the process gently, or kills it after a while.
func (p *GreetdProcess) Stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.Kill()
	}
}
