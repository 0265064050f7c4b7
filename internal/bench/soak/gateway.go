package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corsgate/corsgate/internal/testutil"
)

// Origins the load sends. Only allowedOrigin is given to the gateway.
const (
	allowedOrigin = "https://app.example.com"
	foreignOrigin = "https://evil.example.net"
)

// gateway is the `corsgate serve` process under test.
type gateway struct {
	addr    string // host:port the clients call
	metrics string // host:port of --metrics-listen
	p       *proc
	logs    *logScan
}

// buildCorsgate builds ./cmd/corsgate of the workspace's root module into dir.
func buildCorsgate(ctx context.Context, dir string, log *slog.Logger) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/corsgate/corsgate").Output()
	if err != nil {
		return "", fmt.Errorf("find the corsgate module (run from the repository, or pass -corsgate): %w", err)
	}
	root := strings.TrimSpace(string(out))
	bin := filepath.Join(dir, "corsgate")
	log.Info("building corsgate", "out", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/corsgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/corsgate: %w\n%s", err, out)
	}
	return bin, nil
}

// startGateway runs `corsgate serve` in front of backend and waits until
// its /healthz answers 200 (the backend is healthy and reachable).
func startGateway(ctx context.Context, bin, backend string, strict bool) (*gateway, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve",
		"--listen=" + addr,
		"--backend=" + backend,
		"--allow-origin=" + allowedOrigin,
		"--metrics-listen=" + metrics,
		"--shutdown-grace=5s",
	}
	if strict {
		args = append(args, "--strict")
	}
	g := &gateway{addr: addr, metrics: metrics, logs: newLogScan()}
	if g.p, err = startProc("corsgate", bin, args, nil, g.logs, nil); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = g.healthy(ctx)
		if err == nil {
			return g, nil
		}
		if exit := g.p.exited(); exit != nil {
			return nil, fmt.Errorf("%w; its last output:\n%s", exit, g.logs.result().tail)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			g.p.kill()
			return nil, fmt.Errorf("corsgate serve not healthy in time: %w; its last output:\n%s", err, g.logs.result().tail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *gateway) healthy(ctx context.Context) error {
	_, err := testutil.HTTPGet(ctx, "http://"+g.addr+"/healthz")
	return err
}

// runtimeStats are the gateway's Go runtime gauges at one moment.
type runtimeStats struct {
	goroutines uint64
	heapInuse  uint64
	heapAlloc  uint64 // live objects and garbage not yet swept; right after a GC, the live heap
	gcCount    uint64 // completed GC cycles (go_gc_duration_seconds_count)
}

// readRuntime scrapes the gateway's /metrics.
func (g *gateway) readRuntime(ctx context.Context) (runtimeStats, error) {
	body, err := testutil.HTTPGet(ctx, "http://"+g.metrics+"/metrics")
	if err != nil {
		return runtimeStats{}, err
	}
	var s runtimeStats
	want := map[string]*uint64{
		"go_goroutines":                &s.goroutines,
		"go_memstats_heap_inuse_bytes": &s.heapInuse,
		"go_memstats_heap_alloc_bytes": &s.heapAlloc,
		"go_gc_duration_seconds_count": &s.gcCount,
	}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	seen := 0
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		dst := want[name]
		if !ok || dst == nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return runtimeStats{}, fmt.Errorf("parse %s: %w", name, err)
		}
		*dst = uint64(v)
		seen++
	}
	if seen != len(want) {
		return runtimeStats{}, fmt.Errorf("/metrics lacks one of %v", slices.Sorted(maps.Keys(want)))
	}
	return s, nil
}
