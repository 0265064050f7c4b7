package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Target names, as the -targets flag takes them.
const (
	targetCorsgate     = "corsgate"
	targetGRPCWebProxy = "grpcwebproxy"
	targetRevProxy     = "revproxy"
	targetDirect       = "direct"
	targetNative       = "native"
)

// candidates lists, per target, the protocols it is meant to speak; the
// readiness probe keeps those that answer. grpcwebproxy serves plain HTTP/1.1
// and understands gRPC-Web only; the reverse proxy and grpc-go only gRPC.
var candidates = map[string][]string{
	targetCorsgate:     {protoGRPCWeb, protoConnect, protoGRPC, protoConnectH2C, protoGRPCWebH2C},
	targetGRPCWebProxy: {protoGRPCWeb},
	targetRevProxy:     {protoGRPC},
	targetDirect:       {protoGRPCWeb, protoConnect, protoGRPC, protoConnectH2C, protoGRPCWebH2C},
	targetNative:       {protoGRPC},
}

// describe says, per target, which process the CPU and memory columns are
// about.
var describe = map[string]string{
	targetCorsgate:     "`corsgate serve` (built from ./cmd/corsgate) in front of the grpc-go backend; figures are the gateway process",
	targetGRPCWebProxy: "improbable-eng grpcwebproxy " + grpcwebproxyVersion + " in front of the grpc-go backend; figures are the proxy process",
	targetRevProxy:     "httputil.ReverseProxy over h2c passing gRPC to the grpc-go backend; figures are the proxy process",
	targetDirect:       "connect-go handler serving the service itself (no gateway, no backend); figures are that server, service work included",
	targetNative:       "the grpc-go backend called directly; figures are the backend, service work included",
}

// target is one started thing the clients call.
type target struct {
	name      string
	addr      string // host:port the clients call
	proc      *proc  // the measured process
	ok        map[string]bool
	notes     map[string]string // protocol → why it is not measured
	addrs     map[string]string // protocol → host:port, when not addr (see addrFor)
	heap      func(ctx context.Context) (uint64, error)
	heapLabel string
	desc      string // for the report: what runs and which process is measured
	owned     bool   // proc is this target's to stop (native shares the backend)
}

func (t *target) stop() {
	if t.owned {
		t.proc.stop()
	}
}

// speaks reports whether the target answered p in the probe.
func (t *target) speaks(p string) bool { return t.ok[p] }

// naReason says why p is not measured on t.
func (t *target) naReason(p string) string {
	if r, ok := t.notes[p]; ok {
		return r
	}
	return "not spoken"
}

// startTarget starts name in front of the backend and probes its protocols.
func startTarget(ctx context.Context, name string, backend *proc, backendAddrs childAddrs, cfg config, tmp string, log *slog.Logger) (*target, error) {
	t := &target{name: name, ok: map[string]bool{}, notes: map[string]string{}, desc: describe[name], owned: true}
	switch name {
	case targetNative:
		t.addr, t.proc, t.owned = backendAddrs.Addr, backend, false
		t.heap, t.heapLabel = expvarHeap(backendAddrs.Debug), "runtime.MemStats.HeapInuse (expvar)"
	case targetDirect, targetRevProxy:
		role := map[string]string{targetDirect: roleDirect, targetRevProxy: roleRevProxy}[name]
		p, a, err := startChild(ctx, role, childBackendEnv+"="+backendAddrs.Addr)
		if err != nil {
			return nil, err
		}
		t.addr, t.proc = a.Addr, p
		t.heap, t.heapLabel = expvarHeap(a.Debug), "runtime.MemStats.HeapInuse (expvar)"
	case targetGRPCWebProxy:
		bin, err := findGRPCWebProxy(ctx, cfg.grpcwebproxy, log)
		if err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args := []string{
			"--backend_addr=" + backendAddrs.Addr,
			"--run_tls_server=false",
			"--run_http_server=true",
			"--server_bind_address=127.0.0.1",
			"--server_http_debug_port=" + strconv.Itoa(port),
			"--allow_all_origins",
			// Its defaults cut every call, streams included, at 10 s.
			"--server_http_max_write_timeout=24h",
			"--server_http_max_read_timeout=24h",
			// Adds /metrics (Go runtime gauges) to the same port; the gRPC path is unchanged.
			"--enable_request_debug",
		}
		p, err := startProc(name, bin, args, nil, nil)
		if err != nil {
			return nil, err
		}
		t.addr, t.proc = "127.0.0.1:"+strconv.Itoa(port), p
		t.heap, t.heapLabel = promHeap("http://"+t.addr+"/metrics"), "go_memstats_heap_inuse_bytes (/metrics)"
	case targetCorsgate:
		p, addr, metrics, addrs, err := startCorsgate(ctx, cfg, backendAddrs.Addr, tmp, log)
		if err != nil {
			return nil, err
		}
		t.addr, t.addrs, t.proc = addr, addrs, p
		if cfg.corsgateBin != "" {
			t.desc = "`corsgate serve` (" + cfg.corsgateBin + ") in front of the grpc-go backend; figures are the gateway process"
		}
		if metrics != "" {
			t.desc += ", with --metrics-listen (Prometheus metrics recorded per call)"
			t.heap, t.heapLabel = promHeap("http://"+metrics+"/metrics"), "go_memstats_heap_inuse_bytes (--metrics-listen)"
		}
	default:
		return nil, fmt.Errorf("unknown target %q", name)
	}
	if err := t.probe(ctx); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// probe waits until the target answers its first candidate protocol (30 s at
// most), then tries the others once each and notes the failures.
func (t *target) probe(ctx context.Context) error {
	cands := candidates[t.name]
	deadline := time.Now().Add(30 * time.Second)
	for i, name := range cands {
		p := protocols[name]
		hc := newHTTPClient(p, 1)
		c := newGreetClient(hc, t.addrFor(name), p)
		var err error
		for {
			callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = greetOnce(callCtx, c)
			cancel()
			if err == nil || i > 0 || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			if exit := t.proc.exited(); exit != nil {
				return exit
			}
			time.Sleep(100 * time.Millisecond)
		}
		hc.CloseIdleConnections()
		if err == nil {
			t.ok[name] = true
			continue
		}
		if i == 0 {
			return fmt.Errorf("%s does not answer %s: %w\nits last output:\n%s", t.name, p.label, err, t.proc.output.String())
		}
		t.notes[name] = "probe failed: " + oneLine(err.Error())
	}
	return nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// grpcwebproxyVersion is the peer's release, pinned by the tool line of
// internal/bench/go.mod; the bench checks that the binary it runs is that one.
const grpcwebproxyVersion = "v0.15.0"

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
// runs `corsgate serve` on a free port. It returns the gateway's address,
// when the binary has --metrics-listen the metrics address, and the
// addresses of protocols served on listeners of their own.
func startCorsgate(ctx context.Context, cfg config, backend, tmp string, log *slog.Logger) (p *proc, addr, metrics string, addrs map[string]string, err error) {
	bin := cfg.corsgateBin
	if bin == "" {
		// The repository's root: the directory of go.work, which joins
		// this module to the root module.
		root, err := goEnv(ctx, "GOWORK")
		if err != nil {
			return nil, "", "", nil, err
		}
		if root == "" || root == "off" {
			return nil, "", "", nil, errors.New("not inside the corsgate repository's workspace: run the bench from the repository, or pass -corsgate")
		}
		bin = filepath.Join(tmp, "corsgate")
		log.Info("building corsgate", "out", bin)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/corsgate")
		cmd.Dir = filepath.Dir(root)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, "", "", nil, fmt.Errorf("go build ./cmd/corsgate: %w\n%s", err, out)
		}
	}
	help, _ := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	if !strings.Contains(string(help), "--backend") {
		return nil, "", "", nil, fmt.Errorf("%s serve has no --backend flag; its help:\n%s", bin, help)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", "", nil, err
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"serve", "--listen=" + addr, "--backend=" + backend, "--allow-origin=" + benchOrigin}
	if cfg.corsgateMetr && strings.Contains(string(help), "--metrics-listen") {
		mport, err := freePort()
		if err != nil {
			return nil, "", "", nil, err
		}
		metrics = "127.0.0.1:" + strconv.Itoa(mport)
		args = append(args, "--metrics-listen="+metrics)
	}
	grpcArgs, addrs, err := grpcListenArgs(string(help))
	if err != nil {
		return nil, "", "", nil, err
	}
	args = append(args, grpcArgs...)
	p, err = startProc(targetCorsgate, bin, args, nil, nil)
	if err != nil {
		return nil, "", "", nil, err
	}
	return p, addr, metrics, addrs, nil
}

// expvarHeap reads runtime.MemStats.HeapInuse from a child's /debug/vars.
func expvarHeap(debugAddr string) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		body, err := httpGet(ctx, "http://"+debugAddr+"/debug/vars")
		if err != nil {
			return 0, err
		}
		var vars struct {
			Memstats struct{ HeapInuse uint64 } `json:"memstats"`
		}
		if err := json.Unmarshal(body, &vars); err != nil {
			return 0, fmt.Errorf("decode /debug/vars: %w", err)
		}
		return vars.Memstats.HeapInuse, nil
	}
}

// promHeap reads go_memstats_heap_inuse_bytes from a Prometheus text page.
func promHeap(url string) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		body, err := httpGet(ctx, url)
		if err != nil {
			return 0, err
		}
		return parsePromGauge(string(body), "go_memstats_heap_inuse_bytes")
	}
}

func parsePromGauge(page, name string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", name, err)
		}
		return uint64(v), nil
	}
	return 0, fmt.Errorf("%s not among the metrics", name)
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", url, res.Status)
	}
	return body, nil
}
