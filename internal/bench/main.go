// Command bench measures corsgate's gateway side by side with its peers, on
// loopback, against one grpc-go backend (internal/greetd):
//
//   - corsgate: the `corsgate serve` binary, built from ./cmd/corsgate;
//   - grpcwebproxy: improbable-eng's grpcwebproxy v0.15.0, pinned by a tool
//     line of this module's go.mod and built with `go tool`;
//   - revproxy: a plain httputil.ReverseProxy over h2c passing gRPC through,
//     the floor any proxy pays;
//   - direct: a connect-go handler serving the service itself, the
//     no-gateway limit;
//   - native: the grpc-go backend called directly, without any proxy;
//   - floor: a net/http server writing a canned gRPC-Web answer, and hop: a
//     process calling the backend as the gateway does; together the part of
//     a gateway's CPU per call that is not its own (see floor.go).
//
// Every target is a separate process so that its CPU time and resident
// memory can be read from /proc. The load comes from connect-go clients in
// this process sending 1 KiB names to Greet: gRPC-Web and Connect over
// HTTP/1.1, and over HTTP/1.1 and HTTP/2 with TLS (a self-signed ECDSA P-256
// certificate made at the start, trusted by these clients only); gRPC over
// h2c and TLS. Targets run in alternation, round after round, so that their
// ratios hold when the machine's speed drifts. The report ends with the
// performance issue's targets, each met or missed.
//
//	go run ./internal/bench                      # full run, markdown on stdout
//	go run ./internal/bench -smoke               # under a minute: proves it runs
//	go run ./internal/bench -out bench.md -rounds 5 -duration 10s
//
// The command re-executes itself to serve as the backend, the reverse proxy,
// the direct handler, the floor and the hop (see child.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if role := os.Getenv(childEnv); role != "" {
		if err := runChild(role, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "bench child %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if _, err := run(ctx, cfg, os.Stdout, logger); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is what the flags select.
type config struct {
	duration     time.Duration // measured time per cell and round
	warmup       time.Duration // unmeasured load before each cell
	rounds       int
	concurrency  []int
	targets      []string
	protocols    []string
	handshakeC   int      // callers of the handshake case; 0 skips it
	handshakeP   []string // its protocols (TLS ones)
	streamCount  int      // messages in the one-stream case; 0 skips it
	streams      int      // streams held open in the memory case; 0 skips it
	memTargets   []string
	outFile      string
	corsgateBin  string // prebuilt corsgate binary; empty builds ./cmd/corsgate
	corsgateMetr bool   // run corsgate with --metrics-listen (heap gauge; metrics cost included)
	grpcwebproxy string // grpcwebproxy binary; empty finds or installs it
	smoke        bool
}

// allTargets lists the targets in the order the tables show them.
var allTargets = []string{targetCorsgate, targetGRPCWebProxy, targetRevProxy, targetDirect, targetNative, targetGRPCProxy, targetFloor, targetHop}

// streamTargets are the targets of the memory case: those that serve streams.
var streamTargets = []string{targetCorsgate, targetGRPCWebProxy, targetRevProxy, targetDirect, targetNative}

// tlsProtocols are the protocols the handshake case may use.
var tlsProtocols = []string{protoGRPCWebH1TLS, protoConnectH1TLS, protoGRPCWebH2TLS, protoConnectH2TLS, protoGRPCH2TLS}

func parseFlags(args []string, errw io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errw)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per target, protocol and concurrency in each round")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds; targets alternate within each round")
	conc := fs.String("concurrency", "1,16,64", "comma-separated concurrent callers")
	targets := fs.String("targets", strings.Join(allTargets, ","), "comma-separated targets: "+strings.Join(allTargets, ", "))
	protos := fs.String("protocols", strings.Join(unaryProtocols, ","), "comma-separated client protocols: "+strings.Join(allProtocols, ", "))
	fs.IntVar(&cfg.handshakeC, "handshake-concurrency", 16, "callers of the handshake case (a new TLS connection per call); 0 skips it")
	hsProtos := fs.String("handshake-protocols", protoGRPCWebH1TLS+","+protoGRPCWebH2TLS, "comma-separated protocols of the handshake case: "+strings.Join(tlsProtocols, ", "))
	fs.IntVar(&cfg.streamCount, "stream-messages", 100000, "messages on the one server stream (at most 100000); 0 skips the streaming case")
	fs.IntVar(&cfg.streams, "streams", 10000, "server streams held open in the memory case; 0 skips it")
	memTargets := fs.String("memory-targets", strings.Join(streamTargets, ","), "comma-separated targets of the memory case: "+strings.Join(streamTargets, ", "))
	fs.StringVar(&cfg.outFile, "out", "", "also write the markdown report to this file")
	fs.StringVar(&cfg.corsgateBin, "corsgate", "", "corsgate binary to run (default: go build ./cmd/corsgate into a temporary directory)")
	fs.BoolVar(&cfg.corsgateMetr, "corsgate-metrics", true, "run corsgate with --metrics-listen, as grpcwebproxy always records Prometheus metrics; gives the memory case its heap figure")
	fs.StringVar(&cfg.grpcwebproxy, "grpcwebproxy", "", "grpcwebproxy binary to run (default: the one internal/bench/go.mod pins, built with go tool)")
	fs.BoolVar(&cfg.smoke, "smoke", false, "tiny run (well under a minute) that only proves the bench works; explicit flags still win")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.smoke {
		smokeDefaults(&cfg, set, conc)
	}
	var err error
	if cfg.concurrency, err = parseInts(*conc); err != nil {
		return config{}, fmt.Errorf("-concurrency: %w", err)
	}
	if cfg.targets, err = parseNames(*targets, allTargets); err != nil {
		return config{}, fmt.Errorf("-targets: %w", err)
	}
	if cfg.memTargets, err = parseNames(*memTargets, streamTargets); err != nil {
		return config{}, fmt.Errorf("-memory-targets: %w", err)
	}
	if cfg.protocols, err = parseNames(*protos, allProtocols); err != nil {
		return config{}, fmt.Errorf("-protocols: %w", err)
	}
	if cfg.handshakeP, err = parseNames(*hsProtos, tlsProtocols); err != nil {
		return config{}, fmt.Errorf("-handshake-protocols: %w", err)
	}
	switch {
	case cfg.duration <= 0:
		return config{}, fmt.Errorf("-duration %v: must be positive", cfg.duration)
	case cfg.warmup < 0:
		return config{}, fmt.Errorf("-warmup %v: must not be negative", cfg.warmup)
	case cfg.rounds < 1:
		return config{}, fmt.Errorf("-rounds %d: must be at least 1", cfg.rounds)
	case cfg.streamCount < 0 || cfg.streamCount > 100000:
		return config{}, fmt.Errorf("-stream-messages %d: must be between 0 and 100000 (the service's limit)", cfg.streamCount)
	case cfg.streams < 0:
		return config{}, fmt.Errorf("-streams %d: must not be negative", cfg.streams)
	case cfg.handshakeC < 0:
		return config{}, fmt.Errorf("-handshake-concurrency %d: must not be negative", cfg.handshakeC)
	}
	return cfg, nil
}

// smokeDefaults shrinks every unset knob so that the whole run takes well
// under a minute.
func smokeDefaults(cfg *config, set map[string]bool, conc *string) {
	if !set["duration"] {
		cfg.duration = 150 * time.Millisecond
	}
	if !set["warmup"] {
		cfg.warmup = 50 * time.Millisecond
	}
	if !set["rounds"] {
		cfg.rounds = 1
	}
	if !set["concurrency"] {
		*conc = "1,16"
	}
	if !set["stream-messages"] {
		cfg.streamCount = 2000
	}
	if !set["streams"] {
		cfg.streams = 300
	}
	if !set["handshake-concurrency"] {
		cfg.handshakeC = 4
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// parseNames splits a comma-separated list and checks every name against
// known; the result keeps known's order.
func parseNames(s string, known []string) ([]string, error) {
	want := map[string]bool{}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		found := false
		for _, k := range known {
			found = found || k == f
		}
		if !found {
			return nil, fmt.Errorf("unknown name %q (want one of %s)", f, strings.Join(known, ", "))
		}
		want[f] = true
	}
	var out []string
	for _, k := range known {
		if want[k] {
			out = append(out, k)
		}
	}
	return out, nil
}
