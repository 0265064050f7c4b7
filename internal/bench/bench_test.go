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
	targets := "corsgate,grpcwebproxy,revproxy,direct,native"
	cfg, err := parseFlags([]string{"-smoke", "-targets", targets, "-memory-targets", targets, "-streams", "300"}, io.Discard)
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
			}
		}
	}
	wantStreams := []streamKey{
		{protocol: protoGRPCWeb, target: targetCorsgate},
		{protocol: protoConnect, target: targetCorsgate},
		{protocol: protoGRPC, target: targetCorsgate},
		{protocol: protoGRPCWeb, target: targetGRPCWebProxy},
		{protocol: protoGRPC, target: targetRevProxy},
		{protocol: protoConnect, target: targetDirect},
		{protocol: protoGRPC, target: targetNative},
		{protocol: protoGRPCGo, target: targetNative},
	}
	for _, key := range wantStreams {
		r := rep.stream[key]
		if r == nil || r.errors != 0 || r.msgs != int64(cfg.streamCount*cfg.rounds) {
			t.Errorf("stream %+v: %+v", key, r)
		}
	}
	if len(rep.memory) != 5 {
		t.Errorf("memory case ran for %d targets, want 5 (failures: %v)", len(rep.memory), rep.memErrs)
	}
	for _, m := range rep.memory {
		if m.opened != cfg.streams || m.errors != 0 || m.open.rss == 0 || m.heapOpen == 0 {
			t.Errorf("memory %s: %d/%d open, %d errors (%s), RSS %d, heap %d (%s)",
				m.target, m.opened, m.want, m.errors, m.firstErr, m.open.rss, m.heapOpen, m.heapErr)
		}
	}
	for _, want := range []string{"### Unary", "### Server streaming", "### Memory: 300 server streams", "| gRPC-Web, HTTP/1.1 | 16 | grpcwebproxy |"} {
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
				return c.rounds == 3 && slices.Equal(c.concurrency, []int{1, 16, 64}) && len(c.targets) == 5
			},
		},
		{
			name: "smoke shrinks what is not set",
			args: []string{"-smoke", "-rounds", "2"},
			check: func(c config) bool {
				return c.rounds == 2 && c.duration < time.Second && c.streamCount == 2000 && slices.Equal(c.concurrency, []int{1, 16})
			},
		},
		{
			name:  "targets keep table order",
			args:  []string{"-targets", "native, corsgate"},
			check: func(c config) bool { return slices.Equal(c.targets, []string{targetCorsgate, targetNative}) },
		},
		{name: "unknown target", args: []string{"-targets", "envoy"}, wantErr: true},
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
