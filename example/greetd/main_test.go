package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/testutil"
)

// TestRun starts greetd as main does, calls it, and stops it as SIGTERM would
// (by ending run's context).
func TestRun(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var logs testutil.SyncBuffer
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--log-level", "debug"}, &logs, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := greetv1.NewGreetServiceClient(conn).Greet(ctx, &greetv1.GreetRequest{Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetGreeting() != "Hello, Ada!" {
		t.Errorf("greeting = %q", res.GetGreeting())
	}
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v; want SERVING", h.GetStatus(), err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after stop = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	for _, want := range []string{"greetd serving", "procedure=/greet.v1.GreetService/Greet", "greetd stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestRunBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		want  string
		usage bool // exit code 2 rather than 1
	}{
		{name: "unknown flag", args: []string{"--nope"}, want: "flag provided but not defined: -nope", usage: true},
		{name: "bad level", args: []string{"--log-level", "loud"}, want: `--log-level "loud"`, usage: true},
		{name: "extra argument", args: []string{"serve"}, want: `unexpected argument "serve"`, usage: true},
		{name: "bad listen", args: []string{"--listen", "not-an-address"}, want: `--listen "not-an-address"`, usage: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.SyncBuffer
			err := run(t.Context(), tt.args, &logs, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
			if errors.Is(err, flag.ErrHelp) {
				t.Errorf("run(%q) asked for help", tt.args)
			}
			if got := errors.As(err, new(usageError)); got != tt.usage {
				t.Errorf("run(%q) is a usage error: %v, want %v", tt.args, got, tt.usage)
			}
		})
	}
}
