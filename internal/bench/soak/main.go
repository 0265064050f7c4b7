// Command soak runs corsgate's gateway under mixed load and chaos for a
// bounded time, on loopback, and checks invariants while it does:
//
//   - every completed call's payload is right;
//   - every failure carries a status in the caller's protocol (a
//     connect-go client sees a wire error, a raw HTTP caller a well-formed
//     gRPC-Web trailer or Connect error), with Access-Control-Allow-Origin
//     when the origin is allowed and without it when it is not;
//   - no call outlives its deadline by more than a second;
//   - after the load stops, the gateway's goroutines and heap return to
//     within 10 % of the baseline taken after warmup;
//   - no panic in the gateway's or the backend's output.
//
// The load is unary calls in gRPC-Web, Connect (POST and GET), gRPC and raw
// gRPC-Web text and Connect JSON, preflights, server streams, client streams
// and bidi streams over HTTP/2, a slow-reading client, deadline probes that
// announce a deadline only in a header, calls from a disallowed origin and
// random client cancels. Meanwhile the grpc-go backend (internal/greetd) is
// killed with SIGKILL and restarted on the same port every -kill-every.
//
//	go run ./internal/bench/soak -duration 20s -kill-every 6s
//	go run ./internal/bench/soak -duration 10m
//
// The gateway is the real `corsgate serve`, built from ./cmd/corsgate; the
// backend is this command re-executed as a child (see backend.go). The
// report goes to stdout; the exit status is 1 when an invariant was broken.
//
// Not exercised yet, because corsgate serve does not have them: backend
// replicas (-replicas), config reload (-reload-every) and WebSocket streams.
// Their hooks are in chaos.go.
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
	"syscall"
	"time"
)

func main() {
	if os.Getenv(childEnv) == roleBackend {
		if err := runBackend(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "soak backend:", err)
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
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sum, err := run(ctx, cfg, os.Stdout, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if n := sum.violations(); n > 0 {
		fmt.Fprintf(os.Stderr, "soak: %d invariant violations\n", n)
		os.Exit(1)
	}
}

// config is what the flags select.
type config struct {
	duration    time.Duration // load and chaos
	warmup      time.Duration // load before the baseline is taken
	settle      time.Duration // how long goroutines and heap may take to come back
	killEvery   time.Duration // SIGKILL the backend this often; 0 never
	down        time.Duration // how long the backend stays dead
	workers     int           // callers running the mix
	slowReaders int           // callers reading a server stream slowly
	cancelRate  float64       // share of calls the client cancels at a random moment
	foreignRate float64       // share of calls from a disallowed origin
	strict      bool          // run the gateway with --strict
	corsgateBin string        // prebuilt corsgate; empty builds ./cmd/corsgate
	seed        uint64
	replicas    int           // hook: backend replicas (1 until the gateway routes)
	reloadEvery time.Duration // hook: config reload (not exercised until the gateway reloads)
}

func parseFlags(args []string, errw io.Writer) (config, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(errw)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "time under load and chaos")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "load before the goroutine and heap baseline is taken")
	fs.DurationVar(&cfg.settle, "settle", 20*time.Second, "after the load, how long the gateway's goroutines and heap may take to return to the baseline")
	fs.DurationVar(&cfg.killEvery, "kill-every", 20*time.Second, "SIGKILL the backend and restart it on the same port this often; 0 never")
	fs.DurationVar(&cfg.down, "down", 500*time.Millisecond, "how long a killed backend stays dead before its restart")
	fs.IntVar(&cfg.workers, "workers", 4, "concurrent callers running the mix of calls")
	fs.IntVar(&cfg.slowReaders, "slow-readers", 2, "concurrent callers reading a server stream slowly")
	fs.Float64Var(&cfg.cancelRate, "cancel-rate", 0.05, "share of calls the client cancels at a random moment")
	fs.Float64Var(&cfg.foreignRate, "foreign-rate", 0.05, "share of calls sent from a disallowed origin")
	fs.BoolVar(&cfg.strict, "strict", true, "run the gateway with --strict, so that calls from disallowed origins must fail with PERMISSION_DENIED; without it they must be answered without CORS headers")
	fs.StringVar(&cfg.corsgateBin, "corsgate", "", "corsgate binary to run (default: go build ./cmd/corsgate into a temporary directory)")
	fs.Uint64Var(&cfg.seed, "seed", 0, "seed of the random mix; 0 picks one (the report prints it)")
	fs.IntVar(&cfg.replicas, "replicas", 1, "backend replicas; only 1 until corsgate serve routes over several backends")
	fs.DurationVar(&cfg.reloadEvery, "reload-every", 15*time.Second, "reload the gateway's config this often, once corsgate serve can reload (not exercised yet); 0 never")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case cfg.duration <= 0:
		return config{}, fmt.Errorf("-duration %s: must be positive", cfg.duration)
	case cfg.workers < 1:
		return config{}, fmt.Errorf("-workers %d: need at least 1", cfg.workers)
	case cfg.slowReaders < 0:
		return config{}, fmt.Errorf("-slow-readers %d: must not be negative", cfg.slowReaders)
	case cfg.cancelRate < 0 || cfg.cancelRate > 1:
		return config{}, fmt.Errorf("-cancel-rate %g: must be between 0 and 1", cfg.cancelRate)
	case cfg.foreignRate < 0 || cfg.foreignRate > 1:
		return config{}, fmt.Errorf("-foreign-rate %g: must be between 0 and 1", cfg.foreignRate)
	case cfg.killEvery < 0 || (cfg.killEvery > 0 && cfg.down >= cfg.killEvery):
		return config{}, fmt.Errorf("-kill-every %s with -down %s: the backend must be up between kills", cfg.killEvery, cfg.down)
	case cfg.replicas != 1:
		return config{}, fmt.Errorf("-replicas %d: corsgate serve fronts one backend; replicas need routing, which it does not have yet", cfg.replicas)
	}
	return cfg, nil
}
