package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corsgate/corsgate/internal/greetd"
)

// The soak re-executes itself as the backend with these variables set.
const (
	childEnv       = "CORSGATE_SOAK_CHILD"
	childListenEnv = "CORSGATE_SOAK_LISTEN" // the fixed address the backend binds
	roleBackend    = "backend"
	readyPrefix    = "ready "
)

// runBackend serves greetd on the address in childListenEnv until SIGTERM,
// SIGINT or EOF on stdin, after printing "ready <addr>" on out. The address
// may still be held for a moment by the backend killed before: it retries
// the bind for a few seconds.
func runBackend(out io.Writer) error {
	addr := os.Getenv(childListenEnv)
	if addr == "" {
		return fmt.Errorf("%s not set", childListenEnv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(logger) // greetd logs every call at debug level through the default logger
	var lis net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if lis, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if _, err := fmt.Fprintf(out, "%s%s\n", readyPrefix, lis.Addr()); err != nil {
		return err
	}
	return greetd.Serve(ctx, greetd.NewServer(nil), lis, time.Second, logger)
}

// backend runs the greetd child on one fixed loopback port, and kills and
// restarts it there.
type backend struct {
	addr string
	logs *logScan // every incarnation's output

	mu     sync.Mutex
	p      *proc
	starts int
	kills  int
}

func newBackend() (*backend, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	return &backend{addr: addr, logs: newLogScan()}, nil
}

// start runs a new incarnation and waits until it listens.
func (b *backend) start(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	first := make(chan string, 1)
	p, err := startProc("backend", self, nil, []string{childEnv + "=" + roleBackend, childListenEnv + "=" + b.addr}, b.logs, first)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case line := <-first:
		if !strings.HasPrefix(line, readyPrefix) {
			p.kill()
			return fmt.Errorf("backend printed %q, want %q", line, readyPrefix+b.addr)
		}
	case <-p.done:
		return fmt.Errorf("backend did not start: %w; its last output:\n%s", p.exited(), b.logs.result().tail)
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("backend did not listen in time: %w", ctx.Err())
	}
	b.mu.Lock()
	b.p = p
	b.starts++
	b.mu.Unlock()
	return nil
}

// kill ends the running incarnation with SIGKILL: no goodbye, no GOAWAY.
func (b *backend) kill() error {
	b.mu.Lock()
	p := b.p
	b.p = nil
	b.mu.Unlock()
	if p == nil {
		return errors.New("backend not running")
	}
	if err := p.exited(); err != nil {
		return fmt.Errorf("backend died before its kill: %w", err)
	}
	p.kill()
	b.mu.Lock()
	b.kills++
	b.mu.Unlock()
	return nil
}

// stop ends the running incarnation gently.
func (b *backend) stop() {
	b.mu.Lock()
	p := b.p
	b.p = nil
	b.mu.Unlock()
	if p != nil {
		_, _ = p.stop(5 * time.Second)
	}
}

func (b *backend) counts() (starts, kills int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.starts, b.kills
}
