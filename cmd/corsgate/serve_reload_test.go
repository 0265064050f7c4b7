package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/testutil"
)

// reloadOrigin is the origin the config of reload step i allows.
func reloadOrigin(i int) string { return fmt.Sprintf("https://o%d.example.com", i) }

// writeAtomically replaces path as editors and config management do: a
// new file renamed over the old one.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	serveWriteFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// allowsOrigin reports whether a fresh preflight from origin for
// GreetStream is allowed.
func allowsOrigin(t *testing.T, url, origin string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, url+"/greet.v1.GreetService/GreetStream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web")
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.Header.Get("Access-Control-Allow-Origin") == origin
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

var reloadMetric = regexp.MustCompile(`(?m)^corsgate_config_reload_total\{result="(ok|refused)"\} (\d+)$`)

// reloadCounts scrapes corsgate_config_reload_total.
func reloadCounts(t *testing.T, metricsURL string) (ok, refused int) {
	t.Helper()
	res, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	found := 0
	for _, m := range reloadMetric.FindAllStringSubmatch(string(body), -1) {
		n, _ := strconv.Atoi(m[2])
		if m[1] == "ok" {
			ok = n
		} else {
			refused = n
		}
		found++
	}
	if found != 2 {
		t.Fatalf("metrics have %d corsgate_config_reload_total series, want ok and refused:\n%s", found, body)
	}
	return ok, refused
}

func healthz(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res.StatusCode, string(body)
}

// TestServeReloadKeepsStreams holds a server stream open through ten
// reloads: five edits of the watched --config file, one invalid edit that
// is refused (the old config keeps serving, /healthz and the metric say
// so), an edit turning --watch off, and three edits that only SIGHUP
// applies. Each applied step's origin is allowed on fresh preflights and
// the previous one no longer; the stream ends with every message.
//
// Not parallel: SIGHUP goes to the whole test process.
func TestServeReloadKeepsStreams(t *testing.T) {
	backend := testutil.StartGreetd(t, nil)
	path := filepath.Join(t.TempDir(), "corsgate.yaml")
	conf := func(i int, extra string) string {
		return fmt.Sprintf("backend: %s\nallow-origin: [%s]\n%s", backend, reloadOrigin(i), extra)
	}
	serveWriteFile(t, path, conf(0, ""))
	rs := startServe(t, "--config", path, "--metrics-listen", "127.0.0.1:0")
	if !allowsOrigin(t, rs.url, reloadOrigin(0)) {
		t.Fatal("the first config's origin is not allowed")
	}

	const count, interval = 100, 100 * time.Millisecond
	client := greetv1connect.NewGreetServiceClient(http.DefaultClient, rs.url, connect.WithGRPCWeb())
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req := connect.NewRequest(&greetv1.GreetStreamRequest{Name: "reload", Count: count, IntervalMs: int32(interval / time.Millisecond)})
	req.Header().Set("Origin", reloadOrigin(0))
	stream, err := client.GreetStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
		end time.Time
	}
	done := make(chan result, 1)
	go func() {
		n := 0
		for stream.Receive() {
			n++
		}
		done <- result{n, stream.Err(), time.Now()}
	}()

	applied := 0 // the step whose origin is in force
	step := func(i int, extra string, hup bool) {
		t.Helper()
		writeAtomically(t, path, conf(i, extra))
		if hup {
			// --watch is off: the edit alone changes nothing.
			time.Sleep(reloadDebounce + 300*time.Millisecond)
			if !allowsOrigin(t, rs.url, reloadOrigin(applied)) || allowsOrigin(t, rs.url, reloadOrigin(i)) {
				t.Fatalf("step %d: the edit was applied without SIGHUP while --watch is off", i)
			}
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		waitUntil(t, fmt.Sprintf("step %d's origin to be allowed", i), func() bool { return allowsOrigin(t, rs.url, reloadOrigin(i)) })
		if allowsOrigin(t, rs.url, reloadOrigin(applied)) {
			t.Errorf("step %d: the previous origin %s is still allowed", i, reloadOrigin(applied))
		}
		if code, body := healthz(t, rs.url); code != http.StatusOK {
			t.Errorf("step %d: /healthz %d %q after the swap", i, code, body)
		}
		applied = i
	}
	for i := 1; i <= 5; i++ {
		step(i, "", false)
	}

	// An invalid edit: refused, named, and the old config keeps serving.
	writeAtomically(t, path, conf(6, "max-age: forever\n"))
	waitUntil(t, "the invalid config to be refused", func() bool { _, refused := reloadCounts(t, rs.metrics); return refused == 1 })
	if code, body := healthz(t, rs.url); code != http.StatusOK || !strings.Contains(body, "reload refused") || !strings.Contains(body, "max-age") {
		t.Errorf("/healthz after a refused reload: %d %q, want 200 naming the refusal and max-age", code, body)
	}
	if !strings.Contains(rs.stderr.String(), "key=max-age") {
		t.Errorf("the refusal's log does not name the key:\n%s", rs.stderr.String())
	}
	if !allowsOrigin(t, rs.url, reloadOrigin(5)) || allowsOrigin(t, rs.url, reloadOrigin(6)) {
		t.Fatal("the refused config changed the policy")
	}

	step(7, "watch: false\n", false)
	if _, body := healthz(t, rs.url); strings.Contains(body, "reload refused") {
		t.Errorf("/healthz still reports the refusal after a good reload: %q", body)
	}
	for i := 8; i <= 10; i++ {
		step(i, "watch: false\n", true)
	}
	lastReload := time.Now()
	ok, refused := reloadCounts(t, rs.metrics)
	if ok < 9 || refused != 1 {
		t.Errorf("corsgate_config_reload_total: ok %d refused %d, want at least 9 and 1", ok, refused)
	}

	r := <-done
	if r.err != nil || r.n != count {
		t.Fatalf("the stream ended with %d of %d messages: %v", r.n, count, r.err)
	}
	if !r.end.After(lastReload) {
		t.Errorf("the stream ended before the last reload: the test proves nothing; slow the stream down")
	}
}

// TestServeReloadNeedsRestart: a reload that turns TLS on is refused with
// a message saying it needs a restart; nothing of it is applied.
func TestServeReloadNeedsRestart(t *testing.T) {
	t.Parallel()
	backend := testutil.StartGreetd(t, nil)
	path := filepath.Join(t.TempDir(), "corsgate.yaml")
	serveWriteFile(t, path, fmt.Sprintf("backend: %s\nallow-origin: [%s]\n", backend, reloadOrigin(0)))
	rs := startServe(t, "--config", path, "--metrics-listen", "127.0.0.1:0")
	cert := testutil.NewCert(t)
	writeAtomically(t, path, fmt.Sprintf("backend: %s\nallow-origin: [%s]\ntls-cert: %s\ntls-key: %s\n", backend, reloadOrigin(1), cert.CertFile, cert.KeyFile))
	waitUntil(t, "the reload to be refused", func() bool { _, refused := reloadCounts(t, rs.metrics); return refused == 1 })
	if _, body := healthz(t, rs.url); !strings.Contains(body, "--tls-cert") || !strings.Contains(body, "restart") {
		t.Errorf("/healthz: %q, want the refusal naming --tls-cert and a restart", body)
	}
	if allowsOrigin(t, rs.url, reloadOrigin(1)) || !allowsOrigin(t, rs.url, reloadOrigin(0)) {
		t.Error("a refused reload changed the policy")
	}
}

// TestServeCertificateRotation rewrites the listener's certificate and key
// in place, as cert-manager does: new connections get the new certificate
// without a restart, and a connection opened before keeps working.
func TestServeCertificateRotation(t *testing.T) {
	t.Parallel()
	backend := testutil.StartGreetd(t, nil)
	first, second := testutil.NewCert(t), testutil.NewCert(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	copyFile(t, first.CertFile, certFile)
	copyFile(t, first.KeyFile, keyFile)
	rs := startServeTLS(t, first, "--backend", backend, "--allow-origin", serveOrigin,
		"--tls-cert", certFile, "--tls-key", keyFile, "--metrics-listen", "127.0.0.1:0")

	pool := first.Pool.Clone()
	pool.AppendCertsFromPEM(readFile(t, second.CertFile))
	kept := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer kept.CloseIdleConnections()
	if got := servedSerial(t, kept, rs.url); got != first.TLS.Leaf.SerialNumber.String() {
		t.Fatalf("first connection got certificate %s, want the first one", got)
	}

	// In place, the key first: between the writes the pair does not match,
	// which the debounce (and a refused reload at worst) absorbs.
	serveWriteFile(t, keyFile, string(readFile(t, second.KeyFile)))
	serveWriteFile(t, certFile, string(readFile(t, second.CertFile)))
	waitUntil(t, "new connections to get the new certificate", func() bool {
		fresh := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		defer fresh.CloseIdleConnections()
		return servedSerial(t, fresh, rs.url) == second.TLS.Leaf.SerialNumber.String()
	})
	if got := servedSerial(t, kept, rs.url); got != first.TLS.Leaf.SerialNumber.String() {
		t.Errorf("the connection opened before the rotation now reports %s: it was cut and redialed", got)
	}
	if ok, _ := reloadCounts(t, rs.metrics); ok < 1 {
		t.Errorf("no reload counted for the rotation")
	}
}

// servedSerial makes a call on tr and returns the serial of the
// certificate its connection was served with.
func servedSerial(t *testing.T, tr *http.Transport, url string) string {
	t.Helper()
	res, err := (&http.Client{Transport: tr}).Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	// Any answer will do (a loaded machine may time a health check out):
	// the handshake is what is looked at.
	if res.TLS == nil || len(res.TLS.PeerCertificates) == 0 {
		t.Fatalf("/healthz answered %d without TLS", res.StatusCode)
	}
	return res.TLS.PeerCertificates[0].SerialNumber.String()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	serveWriteFile(t, to, string(bytes.Clone(readFile(t, from))))
}

// TestServeReloadConfigMapSwap updates --config the way the kubelet updates
// a mounted ConfigMap: the file is a link through "..data" to a timestamped
// directory, and an update swaps "..data" to a new one. The watcher sees it.
func TestServeReloadConfigMapSwap(t *testing.T) {
	t.Parallel()
	backend := testutil.StartGreetd(t, nil)
	dir := t.TempDir()
	version := func(i int) {
		t.Helper()
		ts := fmt.Sprintf("..2026_12_03_%02d", i)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		serveWriteFile(t, filepath.Join(dir, ts, "corsgate.yaml"), fmt.Sprintf("backend: %s\nallow-origin: [%s]\n", backend, reloadOrigin(i)))
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version(0)
	path := filepath.Join(dir, "corsgate.yaml")
	if err := os.Symlink(filepath.Join("..data", "corsgate.yaml"), path); err != nil {
		t.Fatal(err)
	}
	rs := startServe(t, "--config", path)
	if !allowsOrigin(t, rs.url, reloadOrigin(0)) {
		t.Fatal("the first version's origin is not allowed")
	}
	version(1)
	waitUntil(t, "the swapped ConfigMap to be applied", func() bool { return allowsOrigin(t, rs.url, reloadOrigin(1)) })
	if allowsOrigin(t, rs.url, reloadOrigin(0)) {
		t.Error("the old version's origin is still allowed")
	}
}
