package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// TestMain lets the test binary serve as the soak's backend: the soak
// re-executes its own binary (this one, under go test) with childEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == roleBackend {
		if err := runBackend(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "soak backend:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSoak runs the soak for 20 s (8 s with -short) with a backend kill
// every 6 s (3 s), and requires that no invariant broke, that at least two
// kills happened, and that every kind of call both completed and ran while
// the backend was down: a soak that checked nothing cannot pass.
func TestSoak(t *testing.T) {
	args := []string{"-duration", "20s", "-kill-every", "6s", "-settle", "15s"}
	if testing.Short() {
		args = []string{"-duration", "8s", "-kill-every", "3s", "-settle", "15s"}
	}
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sum, err := run(ctx, cfg, &out, slog.New(slog.DiscardHandler))
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if n := sum.violations(); n > 0 {
		t.Errorf("%d invariant violations (see the report above)", n)
	}
	if sum.kills < 2 {
		t.Errorf("%d backend kills, want at least 2", sum.kills)
	}
	unavailable := 0
	for _, k := range mix {
		ks := sum.calls.stats(k.name)
		proof := cmp.Or(k.proof, outcomeOK)
		if ks.outcomes[proof] == 0 {
			t.Errorf("%s: no call ended %s (%d calls: %v)", k.name, proof, ks.calls, ks.outcomes)
		}
		unavailable += ks.outcomes[connect.CodeUnavailable.String()]
	}
	if unavailable == 0 {
		t.Error("no call failed with unavailable: the kills were not felt")
	}
	if sum.after.goroutines == 0 || sum.baseline.heapAlloc == 0 {
		t.Errorf("runtime figures missing: baseline %+v, after %+v", sum.baseline, sum.after)
	}
}

// TestJudge checks the verdicts on results the soak rarely meets.
func TestJudge(t *testing.T) {
	withACAO := func(origin string) http.Header { return http.Header{"Access-Control-Allow-Origin": {origin}} }
	wire := func(code connect.Code, h http.Header) error {
		e := connect.NewWireError(code, fmt.Errorf("%s", code))
		for k, v := range h {
			e.Meta()[k] = v
		}
		return e
	}
	tests := []struct {
		name        string
		r           callResult
		allowed     bool
		clientEnded bool
		outcome     string
		class       string
	}{
		{name: "ok", r: callResult{header: withACAO(allowedOrigin)}, allowed: true, outcome: outcomeOK},
		{name: "ok without ACAO", r: callResult{header: http.Header{}}, allowed: true, outcome: outcomeOK, class: vNoCORS},
		{name: "bad payload", r: callResult{bad: "greeting"}, allowed: true, outcome: outcomeBroken, class: vPayload},
		{name: "unavailable with ACAO", r: callResult{err: wire(connect.CodeUnavailable, withACAO(allowedOrigin))}, allowed: true, outcome: "unavailable"},
		{name: "unavailable without ACAO", r: callResult{err: wire(connect.CodeUnavailable, nil)}, allowed: true, outcome: "unavailable", class: vNoCORS},
		{name: "unavailable raised by the client", r: callResult{err: connect.NewError(connect.CodeUnavailable, io.EOF)}, allowed: true, outcome: "unavailable", class: vNotWire},
		{name: "unknown from a broken frame", r: callResult{err: connect.NewError(connect.CodeUnknown, io.ErrUnexpectedEOF)}, allowed: true, outcome: "unknown", class: vNotWire},
		{name: "internal written by the gateway", r: callResult{err: wire(connect.CodeInternal, withACAO(allowedOrigin))}, allowed: true, outcome: "internal", class: vCode},
		{name: "client cancel", r: callResult{err: connect.NewError(connect.CodeCanceled, context.Canceled)}, allowed: true, clientEnded: true, outcome: "canceled" + suffixClient},
		{name: "canceled without a client cancel", r: callResult{err: connect.NewError(connect.CodeCanceled, context.Canceled)}, allowed: true, outcome: "canceled", class: vNotWire},
		{name: "foreign refused", r: callResult{err: wire(connect.CodePermissionDenied, nil)}, outcome: outcomeRefused},
		{name: "foreign refused with ACAO", r: callResult{err: wire(connect.CodePermissionDenied, withACAO(foreignOrigin))}, outcome: "permission_denied", class: vForeignCORS},
		{name: "foreign served", r: callResult{header: http.Header{}}, outcome: outcomeOK, class: vForeignOK},
		{name: "not a connect error", r: callResult{err: io.EOF}, allowed: true, outcome: outcomeBroken, class: vNotConnErr},
		{name: "preflight judged itself", r: callResult{outcome: outcomeRefused}, allowed: true, outcome: outcomeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			outcome, class, _ := judge(tt.r, tt.allowed, true, tt.clientEnded)
			if outcome != tt.outcome || class != tt.class {
				t.Errorf("judge = %q, %q; want %q, %q", outcome, class, tt.outcome, tt.class)
			}
		})
	}
}

// TestLogScan checks that panics and fatal errors are found in a child's
// output, across writes that split lines.
func TestLogScan(t *testing.T) {
	s := newLogScan()
	for _, chunk := range []string{
		"time=x level=WARN msg=\"gateway: backend gone\" a=1\n",
		"time=x level=INFO msg=served\npan", "ic: runtime error: index out of range\n\ngoroutine 7 [running]:\nmain.f()\n",
		"fatal error: concurrent map writes\n",
	} {
		if _, err := s.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	r := s.result()
	if r.panics != 2 {
		t.Errorf("panics = %d, want 2", r.panics)
	}
	if len(r.trace) == 0 || r.trace[0] != "panic: runtime error: index out of range" {
		t.Errorf("trace = %q", r.trace)
	}
	if r.levels["WARN"] != 1 || r.levels["INFO"] != 1 || r.msgs["WARN gateway: backend gone"] != 1 {
		t.Errorf("levels %v, msgs %v", r.levels, r.msgs)
	}
}

// TestGRPCWebText checks the decoder of chunked gRPC-Web text bodies.
func TestGRPCWebText(t *testing.T) {
	body := base64.StdEncoding.EncodeToString(frame(0, []byte{0x0a, 0x01, 'x'})) +
		base64.StdEncoding.EncodeToString(frame(flagTrailer, []byte("grpc-status: 0\r\n")))
	got, err := decodeGRPCWebText(body)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := parseEnvelopes(got)
	if err != nil || len(envs) != 2 || envs[1].flags != flagTrailer || string(envs[1].data) != "grpc-status: 0\r\n" {
		t.Fatalf("envelopes %+v, %v", envs, err)
	}
}
