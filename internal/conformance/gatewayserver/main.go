// Command gatewayserver puts corsgate's gateway under the connectrpc
// conformance suite (connectrpc.com/conformance, server mode).
//
// connectconformance starts it once per server configuration and writes a
// length-prefixed connectrpc.conformance.v1.ServerCompatRequest to its stdin.
// gatewayserver then starts the suite's referenceserver as a child, speaking
// plain gRPC over h2c, starts the gateway in-process in front of it (HTTP/1.1
// and h2c on one port, the descriptors compiled from the suite's .proto
// files), and answers on stdout with a ServerCompatResponse naming the
// gateway's address. So every conformance RPC goes client → gateway
// (Connect or gRPC-Web) → gRPC → referenceserver. The gateway is routed: the
// suite's services go to referenceserver, greet.v1.GreetService to greetd,
// started in-process as a second backend. It stops on SIGTERM.
//
// Usage (see ../run.sh):
//
//	gatewayserver --protos DIR [--referenceserver PATH] [--log-level LEVEL]
//
// DIR holds connectrpc/conformance/v1/*.proto, for example the proto folder
// of connectrpc.com/conformance@v1.0.7 in the module cache.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gatewayserver:", err)
		os.Exit(1)
	}
}

// defaultMaxMessageSize is the gateway's message limit when the suite sets
// none (it then expects no limit): larger than any message of the suite.
const defaultMaxMessageSize = 64 << 20

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gatewayserver", flag.ContinueOnError)
	protos := fs.String("protos", "", "folder with connectrpc/conformance/v1/*.proto (required)")
	refserver := fs.String("referenceserver", "referenceserver", "the conformance reference server binary")
	level := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *protos == "" {
		return errors.New("--protos is required")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("pid", os.Getpid())

	schema, err := compileSchema(ctx, *protos)
	if err != nil {
		return err
	}
	req, err := schema.readRequest(os.Stdin)
	if err != nil {
		return fmt.Errorf("reading ServerCompatRequest: %w", err)
	}
	log.Info("server requested", "protocol", req.protocol, "http_version", req.httpVersion,
		"tls", req.useTLS, "message_receive_limit", req.receiveLimit)
	if req.useTLS {
		return errors.New("TLS was requested, but the config says supports_tls: false")
	}

	backend, err := startReference(ctx, schema, *refserver, log)
	if err != nil {
		return err
	}
	defer backend.stop()

	maxSize := defaultMaxMessageSize
	if req.receiveLimit > 0 {
		maxSize = int(req.receiveLimit)
	}
	policy, err := interceptor.New(interceptor.WithAllowedOrigins("*"), interceptor.WithLogger(log))
	if err != nil {
		return err
	}
	// A routed gateway: the suite's service on one backend, greetd's on
	// another, so that every case also crosses the routing table.
	greetAddr, stopGreet, err := startGreetd()
	if err != nil {
		return err
	}
	defer stopGreet()
	g, err := gateway.New(gateway.Config{
		Backends: []gateway.Backend{
			{Name: "conformance", Addresses: []string{backend.addr}, Files: schema.files},
			{Name: "greet", Addresses: []string{greetAddr}},
		},
		Routes: []gateway.Route{
			{Services: []string{"connectrpc.conformance.v1.*"}, Backend: "conformance"},
			{Services: []string{"greet.v1.GreetService"}, Backend: "greet"},
		},
		Policy:         policy,
		MaxMessageSize: maxSize,
		Logger:         log,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer g.Close()
	if err := g.Ready(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}

	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           g,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	port := lis.Addr().(*net.TCPAddr).Port
	if err := schema.writeResponse(os.Stdout, "127.0.0.1", uint32(port)); err != nil {
		return fmt.Errorf("writing ServerCompatResponse: %w", err)
	}
	log.Info("gateway serving", "port", port, "backend", backend.addr)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("gateway server: %w", err)
	case <-backend.exited:
		// A SIGTERM sent to the process group may reach the child first.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			return errors.New("referenceserver exited early")
		}
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	return nil
}

// startGreetd serves greetd (greet.v1.GreetService, reflection, health) on
// a loopback port, the gateway's second backend.
func startGreetd() (addr string, stop func(), err error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := greetd.NewServer(nil)
	go func() { _ = s.Serve(lis) }()
	return lis.Addr().String(), s.Stop, nil
}

// reference is a running referenceserver child.
type reference struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startReference starts referenceserver for gRPC over HTTP/2 without TLS and
// waits for its address.
func startReference(ctx context.Context, schema *schema, path string, log *slog.Logger) (*reference, error) {
	cmd := exec.Command(path)
	cmd.Stderr = os.Stderr
	// The child dies with this process, even when this process is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w (internal/conformance/run.sh passes the one pinned in internal/tools/go.mod)", path, err)
	}
	ref := &reference{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(ref.exited)
	}()
	type result struct {
		host string
		port uint32
		err  error
	}
	got := make(chan result, 1)
	go func() {
		if err := schema.writeRequest(stdin, protocolGRPC, httpVersion2); err != nil {
			got <- result{err: err}
			return
		}
		_ = stdin.Close()
		host, port, err := schema.readResponse(stdout)
		got <- result{host: host, port: port, err: err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			ref.stop()
			return nil, fmt.Errorf("referenceserver: %w", r.err)
		}
		ref.addr = net.JoinHostPort(r.host, strconv.FormatUint(uint64(r.port), 10))
		log.Info("referenceserver started", "addr", ref.addr, "pid", cmd.Process.Pid)
		return ref, nil
	case <-ref.exited:
		return nil, errors.New("referenceserver exited before it answered")
	case <-ctx.Done():
		ref.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		ref.stop()
		return nil, errors.New("referenceserver did not answer within 30s")
	}
}

// stop ends the child: SIGTERM, then SIGKILL after 5s.
func (r *reference) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}
