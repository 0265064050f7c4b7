package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestGoals checks the verdicts of the targets on made-up cells
// whose ratios are known.
func TestGoals(t *testing.T) {
	t.Parallel()
	// cell is calls calls in one second, cpuUS µs of CPU per call, a median
	// of p50 and allocB bytes allocated per call.
	cell := func(calls int64, cpuUS int64, p50 time.Duration, allocB uint64) *unaryResult {
		return &unaryResult{
			calls: calls, elapsed: time.Second, cpu: time.Duration(calls*cpuUS) * time.Microsecond,
			latency: []time.Duration{p50}, allocs: allocCount{Bytes: allocB * uint64(calls), Objects: 10 * uint64(calls)}, allocCalls: calls,
		}
	}
	rep := &report{
		cfg: config{concurrency: []int{1, 16}, protocols: []string{protoGRPCWebH1, protoGRPCH2C, protoGRPCWebH2TLS}},
		unary: map[unaryKey]*unaryResult{
			{protocol: protoGRPCWebH2TLS, concurrency: 16, target: targetCorsgate}:     cell(10000, 100, time.Millisecond, 1000),
			{protocol: protoGRPCWebH2TLS, concurrency: 16, target: targetGRPCWebProxy}: cell(4000, 250, time.Millisecond, 9000),
			{protocol: protoGRPCWebH2TLS, concurrency: 16, target: targetDirect}:       cell(10000, 90, time.Millisecond, 900),
			{protocol: protoGRPCWebH2TLS, concurrency: 16, target: targetFloor}:        cell(10000, 50, time.Millisecond, 100),
			{protocol: protoGRPCH2C, concurrency: 16, target: targetCorsgate}:          cell(5000, 100, time.Millisecond, 3000),
			{protocol: protoGRPCH2C, concurrency: 16, target: targetNative}:            cell(10000, 50, time.Millisecond, 500),
			{protocol: protoGRPCH2C, concurrency: 16, target: targetGRPCProxy}:         cell(5500, 90, time.Millisecond, 2000),
			{protocol: protoGRPCWebH1, concurrency: 1, target: targetCorsgate}:         cell(1000, 300, 250*time.Microsecond, 1000),
			{protocol: protoGRPCWebH1, concurrency: 1, target: targetDirect}:           cell(1000, 200, 200*time.Microsecond, 1000),
			{protocol: protoGRPCH2C, concurrency: 1, target: targetCorsgate}:           cell(1000, 300, 450*time.Microsecond, 1000),
			{protocol: protoGRPCH2C, concurrency: 1, target: targetDirect}:             cell(1000, 200, 300*time.Microsecond, 1000),
		},
		hop: map[int]*unaryResult{16: cell(10000, 30, time.Millisecond, 0)},
	}
	want := map[string]map[string]string{ // goal name prefix → cell → verdict
		"calls/s ÷ grpcwebproxy":  {"grpc-web/h2-tls c=16": "2.50× met"},
		"CPU/call ÷ grpcwebproxy": {"grpc-web/h2-tls c=16": "0.40× missed"},
		"corsgate's own part": {
			"grpc-web/h1 c=16":     "corsgate, floor or hop not measured",
			"grpc-web/h2-tls c=16": "20 % met",
		},
		"CPU/call ÷ direct": {
			"grpc-web/h1 c=16":     "not measured",
			"grpc-web/h2-tls c=16": "1.11× missed",
		},
		"gRPC pass-through": {"grpc/h2c c=16": "0.50× missed", "grpc/h2c c=16, grpcproxy (the floor)": "0.55× floor"},
		"p50 added": {
			"grpc-web/h1 c=1":     "+50 µs met",
			"grpc/h2c c=1":        "+150 µs missed",
			"grpc-web/h2-tls c=1": "corsgate or direct not measured",
		},
		"heap bytes": {
			"grpc-web/h2-tls c=16": "1000 B (10.0 objects) met",
			"grpc/h2c c=16":        "3000 B (10.0 objects) missed",
		},
	}
	got := map[string]map[string]string{}
	for _, g := range rep.goals() {
		for prefix := range want {
			if !strings.HasPrefix(g.name, prefix) {
				continue
			}
			got[prefix] = map[string]string{}
			for _, r := range g.rows {
				v := r.measured
				if r.floor {
					v += " floor"
				}
				if r.met != nil {
					v += map[bool]string{true: " met", false: " missed"}[*r.met]
				}
				got[prefix][r.cell] = v
			}
		}
	}
	for prefix, cells := range want {
		if len(got[prefix]) != len(cells) {
			t.Errorf("goal %q: cells %v, want %v", prefix, got[prefix], cells)
			continue
		}
		for c, v := range cells {
			if got[prefix][c] != v {
				t.Errorf("goal %q, %s: %q, want %q", prefix, c, got[prefix][c], v)
			}
		}
	}
	var b strings.Builder
	rep.goalsSection(&b)
	if !strings.Contains(b.String(), "4 met, 5 missed, 3 not measured") {
		t.Errorf("goals section's summary:\n%s", b.String())
	}
}

// TestAllocWindow checks that a window's allocations leave out one read of
// the counters, and never go below zero.
func TestAllocWindow(t *testing.T) {
	t.Parallel()
	reads := func(vals ...uint64) allocReader {
		return func(context.Context) (allocCount, error) {
			v := vals[0]
			vals = vals[1:]
			return allocCount{Bytes: v, Objects: v / 10}, nil
		}
	}
	for _, tt := range []struct {
		name  string
		vals  []uint64
		bytes uint64
	}{
		{name: "load", vals: []uint64{1000, 1100, 5100}, bytes: 3900},
		{name: "idle", vals: []uint64{1000, 1100, 1150}, bytes: 0},
	} {
		w, err := startAllocs(t.Context(), reads(tt.vals...))
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.end(t.Context())
		if err != nil || got.Bytes != tt.bytes {
			t.Errorf("%s: %+v, %v; want %d bytes", tt.name, got, err, tt.bytes)
		}
	}
}
