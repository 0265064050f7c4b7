package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bench's children: the bench
// re-executes its own binary (this one, under go test) with childEnv set.
func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		if err := runChild(role, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "bench child %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole bench in smoke mode against every target (corsgate
// is built from ./cmd/corsgate) and checks that every cell measured something
// without errors. It proves the bench runs; the numbers mean nothing.
func TestSmoke(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"-smoke", "-targets", strings.Join(allTargets, ","), "-memory-targets", strings.Join(streamTargets, ","), "-streams", "300"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := run(ctx, cfg, &out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	md := out.String()
	t.Log(md)
	if len(rep.targets) != len(allTargets) {
		t.Fatalf("%d targets started, want %d", len(rep.targets), len(allTargets))
	}

	allocated := map[string]float64{} // target → bytes per call, summed over its cells
	for _, conc := range cfg.concurrency {
		for _, tg := range rep.targets {
			for _, p := range candidates[tg.name] {
				if !slices.Contains(unaryProtocols, p) {
					continue
				}
				key := unaryKey{protocol: p, concurrency: conc, target: tg.name}
				r := rep.unary[key]
				switch {
				case r == nil:
					t.Errorf("unary %+v: not measured (%s)", key, tg.naReason(p))
				case r.calls == 0 || r.errors != 0:
					t.Errorf("unary %+v: %d calls, %d errors (%s)", key, r.calls, r.errors, r.firstErr)
				case r.percentile(0.5) <= 0 || r.peakRSS == 0:
					t.Errorf("unary %+v: p50 %v, peak RSS %d", key, r.percentile(0.5), r.peakRSS)
				}
				// Every target but grpcwebproxy counts allocations the
				// runtime/metrics way. The runtime flushes its counts per
				// P in batches, so one short cell may read 0: each cell
				// must read them, and each target's cells together must
				// show allocation.
				if r != nil {
					bytes, objects, ok := r.allocPer()
					if !ok || bytes < 0 || objects < 0 {
						t.Errorf("unary %+v: allocations per call %.0f B, %.1f objects, read %t (%s)", key, bytes, objects, ok, r.allocErr)
					}
					allocated[tg.name] += bytes
				}
			}
		}
		if h := rep.hop[conc]; h == nil || h.calls == 0 || h.errors != 0 {
			t.Errorf("hop c=%d: %+v", conc, h)
		}
	}
	for name, b := range allocated {
		if b <= 0 {
			t.Errorf("%s: no allocation read over all its cells", name)
		}
	}
	// Handshakes: every TLS target on both protocols (the floor serves
	// HTTP/2 only over TLS), one new connection per call.
	for _, p := range cfg.handshakeP {
		for _, name := range []string{targetCorsgate, targetGRPCWebProxy, targetDirect, targetFloor} {
			if name == targetFloor && !slices.Contains(candidates[targetFloor], p) {
				continue
			}
			key := unaryKey{protocol: p, concurrency: cfg.handshakeC, target: name}
			r := rep.handshake[key]
			if r == nil || r.calls == 0 || r.errors != 0 || r.conns != r.calls {
				t.Errorf("handshakes %+v: %+v, want calls, no errors and one connection per call", key, r)
			}
		}
	}
	wantStreams := []streamKey{
		{protocol: protoGRPCWebH1, target: targetCorsgate},
		{protocol: protoConnectH1, target: targetCorsgate},
		{protocol: protoGRPCH2C, target: targetCorsgate},
		{protocol: protoGRPCWebH2TLS, target: targetCorsgate},
		{protocol: protoConnectH1TLS, target: targetCorsgate},
		{protocol: protoGRPCWebH1, target: targetGRPCWebProxy},
		{protocol: protoGRPCWebH2TLS, target: targetGRPCWebProxy},
		{protocol: protoGRPCH2C, target: targetRevProxy},
		{protocol: protoGRPCH2C, target: targetGRPCProxy},
		{protocol: protoConnectH1, target: targetDirect},
		{protocol: protoGRPCH2TLS, target: targetDirect},
		{protocol: protoGRPCH2C, target: targetNative},
		{protocol: protoGRPCGo, target: targetNative},
	}
	for _, key := range wantStreams {
		r := rep.stream[key]
		if r == nil || r.errors != 0 || r.msgs != int64(cfg.streamCount*cfg.rounds) {
			t.Errorf("stream %+v: %+v", key, r)
		}
	}
	if r := rep.stream[streamKey{protocol: protoGRPCWebH1, target: targetFloor}]; r != nil {
		t.Errorf("the floor was streamed through: %+v", r)
	}
	if len(rep.memory) != len(streamTargets) {
		t.Errorf("memory case ran for %d targets, want %d (failures: %v)", len(rep.memory), len(streamTargets), rep.memErrs)
	}
	for _, m := range rep.memory {
		if m.opened != cfg.streams || m.errors != 0 || m.open.rss == 0 || m.heapOpen == 0 {
			t.Errorf("memory %s: %d/%d open, %d errors (%s), RSS %d, heap %d (%s)",
				m.target, m.opened, m.want, m.errors, m.firstErr, m.open.rss, m.heapOpen, m.heapErr)
		}
	}
	// Every check of the targets found its cells, except those that
	// divide by a CPU time a smoke cell may not have ticked, and the
	// pass-through check shows its floor.
	floors := 0
	for _, g := range rep.goals() {
		if len(g.rows) == 0 {
			t.Errorf("goal %q: no cells", g.name)
		}
		for _, r := range g.rows {
			if r.met == nil && !r.floor && r.measured != "no CPU measured" {
				t.Errorf("goal %q, %s: %s", g.name, r.cell, r.measured)
			}
			if r.floor {
				floors++
			}
		}
	}
	if floors != len(rep.goalConcs()) {
		t.Errorf("%d floor rows, want one per goal concurrency %v", floors, rep.goalConcs())
	}
	for _, want := range []string{
		"### The issue's targets", "### Unary", "### Latency at low load", "### The backend hop alone",
		"### corsgate's CPU per call: floor + hop + its own part", "| grpc-web/h2-tls | 16 |",
		"### TLS handshakes: a new connection per call, 4 callers", "### Server streaming", "### Memory: 300 server streams",
		"| grpc-web/h1 | 16 | grpcwebproxy |", "| grpc-web/h2-tls | 16 | floor |", "| connect/h1-tls | 16 | corsgate |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{
			name: "plain",
			stat: "123 (bench) S 1 123 123 0 -1 4194560 100 0 0 0 250 40 0 0 20 0 8 0 100 0 0",
			want: 290 * clockTick,
		},
		{
			name: "name with spaces and parentheses",
			stat: "123 (a) b (c) R 1 123 123 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 8 0 100 0 0",
			want: 10 * clockTick,
		},
		{name: "truncated", stat: "123 (x) S 1 2 3", wantErr: true},
		{name: "no name", stat: "garbage", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestProcMemSelf(t *testing.T) {
	t.Parallel()
	m, err := procMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.rss == 0 || m.peak < m.rss {
		t.Errorf("procMem(self) = %+v: want RSS > 0 and peak >= RSS", m)
	}
	if _, err := parseStatus([]byte("Name:\tx\nVmRSS:\t12 kB\n")); err == nil {
		t.Error("parseStatus without VmHWM: no error")
	}
}

func TestParsePromGauge(t *testing.T) {
	t.Parallel()
	page := "# HELP go_memstats_heap_inuse_bytes x\n" +
		"go_memstats_heap_inuse_bytes_total 1\n" +
		"go_memstats_heap_inuse_bytes 1.2582912e+07\n"
	got, err := parsePromGauge(page, "go_memstats_heap_inuse_bytes")
	if err != nil || got != 12582912 {
		t.Errorf("parsePromGauge = %d, %v; want 12582912", got, err)
	}
	if _, err := parsePromGauge("other 1\n", "go_memstats_heap_inuse_bytes"); err == nil {
		t.Error("missing gauge: no error")
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		check   func(config) bool
		wantErr bool
	}{
		{
			name: "defaults",
			args: nil,
			check: func(c config) bool {
				return c.rounds == 3 && slices.Equal(c.concurrency, []int{1, 16, 64}) && slices.Equal(c.targets, allTargets) && len(c.targets) == 8 &&
					len(c.memTargets) == 5 && len(c.protocols) == 9 && c.handshakeC == 16 &&
					slices.Equal(c.handshakeP, []string{protoGRPCWebH1TLS, protoGRPCWebH2TLS})
			},
		},
		{
			name: "smoke shrinks what is not set",
			args: []string{"-smoke", "-rounds", "2"},
			check: func(c config) bool {
				return c.rounds == 2 && c.duration < time.Second && c.streamCount == 2000 && slices.Equal(c.concurrency, []int{1, 16}) && c.handshakeC == 4
			},
		},
		{
			name:  "targets keep table order",
			args:  []string{"-targets", "native, corsgate"},
			check: func(c config) bool { return slices.Equal(c.targets, []string{targetCorsgate, targetNative}) },
		},
		{name: "unknown target", args: []string{"-targets", "envoy"}, wantErr: true},
		{name: "the floor serves no streams", args: []string{"-memory-targets", "floor"}, wantErr: true},
		{name: "handshakes need TLS", args: []string{"-handshake-protocols", "grpc-web/h1"}, wantErr: true},
		{name: "negative handshake callers", args: []string{"-handshake-concurrency", "-1"}, wantErr: true},
		{name: "bad concurrency", args: []string{"-concurrency", "1,0"}, wantErr: true},
		{name: "too many stream messages", args: []string{"-stream-messages", "100001"}, wantErr: true},
		{name: "stray argument", args: []string{"now"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if err == nil && !tt.check(cfg) {
				t.Errorf("parseFlags(%q) = %+v", tt.args, cfg)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	a, b, c := &target{name: "a"}, &target{name: "b"}, &target{name: "c"}
	got := rotate([]*target{a, b, c}, 4)
	if !slices.Equal(got, []*target{b, c, a}) {
		t.Errorf("rotate by 4 = %v %v %v", got[0].name, got[1].name, got[2].name)
	}
}
