package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// grpcwebproxyVersion is the peer's release, pinned by the tool line of
// internal/bench/go.mod; the bench checks that the binary it runs is that one.
const grpcwebproxyVersion = "v0.15.0"

// startGRPCWebProxy runs grpcwebproxy with its HTTP server and its TLS
// server (HTTP/1.1 and HTTP/2 by ALPN) on two free ports of one process,
// and sets t's endpoints.
func startGRPCWebProxy(ctx context.Context, t *target, cfg config, backend string, cert benchCert, log *slog.Logger) error {
	bin, err := findGRPCWebProxy(ctx, cfg.grpcwebproxy, log)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	tlsPort, err := freePort()
	if err != nil {
		return err
	}
	args := []string{
		"--backend_addr=" + backend,
		"--run_http_server=true",
		"--run_tls_server=true",
		"--server_bind_address=127.0.0.1",
		"--server_http_debug_port=" + strconv.Itoa(port),
		"--server_http_tls_port=" + strconv.Itoa(tlsPort),
		"--server_tls_cert_file=" + cert.certFile,
		"--server_tls_key_file=" + cert.keyFile,
		"--allow_all_origins",
		// Its defaults cut every call, streams included, at 10 s.
		"--server_http_max_write_timeout=24h",
		"--server_http_max_read_timeout=24h",
		// Adds /metrics (Go runtime gauges) to the HTTP port; the gRPC path is unchanged.
		"--enable_request_debug",
	}
	p, err := startProc(targetGRPCWebProxy, bin, args, nil, nil)
	if err != nil {
		return err
	}
	t.owned = append(t.owned, p)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	metrics := "http://" + addr + "/metrics"
	// Its client_golang predates the runtime/metrics counters: TotalAlloc
	// is the same figure; Mallocs counts tiny allocations too.
	allocs := promAllocs(metrics, "go_memstats_alloc_bytes_total", "go_memstats_mallocs_total")
	label := "go_memstats_alloc_bytes_total, go_memstats_mallocs_total (/metrics; objects include tiny allocations)"
	t.plain = &endpoint{addr: addr, proc: p, allocs: allocs, allocsLabel: label}
	t.tls = &endpoint{addr: "127.0.0.1:" + strconv.Itoa(tlsPort), proc: p, allocs: allocs, allocsLabel: label}
	t.heap, t.heapLabel = promHeap(metrics), "go_memstats_heap_inuse_bytes (/metrics)"
	return nil
}

// findGRPCWebProxy returns bin when set, else the grpcwebproxy that
// internal/bench/go.mod pins, built by `go tool -n` (which prints the
// cached binary's path instead of running it).
func findGRPCWebProxy(ctx context.Context, bin string, log *slog.Logger) (string, error) {
	if bin != "" {
		return bin, nil
	}
	log.Info("building grpcwebproxy", "version", grpcwebproxyVersion)
	out, err := exec.CommandContext(ctx, "go", "tool", "-n", "grpcwebproxy").Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n grpcwebproxy (run the bench from the repository, or pass -grpcwebproxy): %w", err)
	}
	bin = strings.TrimSpace(string(out))
	if info, err := buildinfo.ReadFile(bin); err != nil || info.Main.Version != grpcwebproxyVersion {
		return "", fmt.Errorf("%s is not grpcwebproxy %s: align internal/bench/go.mod and grpcwebproxyVersion", bin, grpcwebproxyVersion)
	}
	return bin, nil
}

func goEnv(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startCorsgate builds ./cmd/corsgate (unless -corsgate names a binary) and
// runs `corsgate serve` twice on free ports: once on plain TCP and once with
// --tls-cert (a listener serves one or the other), each with its own
// --metrics-listen when the binary has it and -corsgate-metrics is set.
func startCorsgate(ctx context.Context, t *target, cfg config, backend string, cert benchCert, tmp string, log *slog.Logger) error {
	bin := cfg.corsgateBin
	if bin == "" {
		// The repository's root: the directory of go.work, which joins
		// this module to the root module.
		root, err := goEnv(ctx, "GOWORK")
		if err != nil {
			return err
		}
		if root == "" || root == "off" {
			return errors.New("not inside the corsgate repository's workspace: run the bench from the repository, or pass -corsgate")
		}
		bin = filepath.Join(tmp, "corsgate")
		log.Info("building corsgate", "out", bin)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/corsgate")
		cmd.Dir = filepath.Dir(root)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/corsgate: %w\n%s", err, out)
		}
	} else {
		t.desc = strings.Replace(t.desc, "(built from ./cmd/corsgate)", "("+bin+")", 1)
	}
	help, _ := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	if !strings.Contains(string(help), "--backend") {
		return fmt.Errorf("%s serve has no --backend flag; its help:\n%s", bin, help)
	}
	withMetrics := cfg.corsgateMetr && strings.Contains(string(help), "--metrics-listen")
	hasTLS := strings.Contains(string(help), "--tls-cert")
	start := func(extra ...string) (*endpoint, error) {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		ep := &endpoint{addr: "127.0.0.1:" + strconv.Itoa(port)}
		args := append([]string{"serve", "--listen=" + ep.addr, "--backend=" + backend, "--allow-origin=" + benchOrigin}, extra...)
		var metrics string
		if withMetrics {
			mport, err := freePort()
			if err != nil {
				return nil, err
			}
			metrics = "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"
			args = append(args, "--metrics-listen=127.0.0.1:"+strconv.Itoa(mport))
			ep.allocs = promAllocs(metrics, "go_gc_heap_allocs_bytes_total", "go_gc_heap_allocs_objects_total")
			ep.allocsLabel = "go_gc_heap_allocs_bytes_total, go_gc_heap_allocs_objects_total (--metrics-listen)"
		}
		if ep.proc, err = startProc(targetCorsgate, bin, args, nil, nil); err != nil {
			return nil, err
		}
		t.owned = append(t.owned, ep.proc)
		if metrics != "" && t.heap == nil {
			t.heap, t.heapLabel = promHeap(metrics), "go_memstats_heap_inuse_bytes (--metrics-listen)"
		}
		return ep, nil
	}
	grpcArgs, grpcAddr, err := grpcListenArgs(string(help))
	if err != nil {
		return err
	}
	if t.plain, err = start(grpcArgs...); err != nil {
		return err
	}
	t.plain.grpcAddr = grpcAddr
	if hasTLS {
		if t.tls, err = start("--tls-cert="+cert.certFile, "--tls-key="+cert.keyFile); err != nil {
			return err
		}
	}
	if withMetrics {
		t.desc += ", with --metrics-listen (Prometheus metrics recorded per call)"
	}
	return nil
}
