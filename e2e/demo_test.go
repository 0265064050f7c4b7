package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// rowState is one row of the page's table after "Run all".
type rowState struct {
	Client string `json:"client"`
	Case   string `json:"case"`
	State  string `json:"state"`
}

// wantStates is what "Run all" shows per client and case (the ids of the
// page's table) in mode m: ok, error (a failure the page shows on purpose)
// or unsupported (the page does not try). The four fetch and XHR clients
// show the same in both modes; the WebSocket client runs against the
// gateway only, and streams request bodies there.
func wantStates(m mode) map[string]string {
	want := map[string]string{}
	for _, c := range []string{"greet", "greet-error", "set-greeting", "greet-stream", "greet-many", "chat", "reset-greetings"} {
		switch {
		case m == dropIn:
			want[clientImprobableWS+"/"+c] = "unsupported"
		case c == "greet-error" || c == "reset-greetings":
			want[clientImprobableWS+"/"+c] = "error"
		default:
			want[clientImprobableWS+"/"+c] = "ok"
		}
	}
	for _, client := range clients {
		want[client+"/greet"] = "ok"
		want[client+"/greet-error"] = "error"
		want[client+"/set-greeting"] = "ok"
		if streams(client) {
			want[client+"/greet-stream"] = "ok"
		} else {
			want[client+"/greet-stream"] = "unsupported"
		}
		want[client+"/greet-many"] = "unsupported"
		want[client+"/chat"] = "unsupported"
		want[client+"/reset-greetings"] = "error"
	}
	return want
}

// runAll clicks "Run all", waits for the table, checks every row's state
// against want and returns a full-page PNG screenshot.
func (p *page) runAll(want map[string]string) []byte {
	p.t.Helper()
	p.do(
		chromedp.EmulateViewport(1280, 800),
		chromedp.Click(chromedp.CSS("#run-all")),
	)
	ctx, cancel := context.WithTimeout(p.ctx, tabTimeout)
	defer cancel()
	for {
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.body.dataset.state === "done"`))
		if err != nil {
			p.t.Fatal(err)
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("Run all did not finish: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]rowState](`Array.from(document.querySelectorAll("tr[data-case]"),
		(r) => ({client: r.dataset.client, case: r.dataset.case, state: r.dataset.state}))`))
	if err != nil {
		p.t.Fatal(err)
	}
	if len(rows) != len(want) {
		p.t.Errorf("the table has %d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		if w := want[r.Client+"/"+r.Case]; r.State != w {
			p.t.Errorf("row %s/%s is %q, want %q", r.Client, r.Case, r.State, w)
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	return shot
}

// saveScreenshot writes png into the test's temp dir and, for the README's
// picture when CORSGATE_SCREENSHOT names a file (relative to the repository
// root), there.
func saveScreenshot(t *testing.T, png []byte, readme bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "screenshot.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	if dst := os.Getenv("CORSGATE_SCREENSHOT"); readme && dst != "" {
		if !filepath.IsAbs(dst) {
			dst = filepath.Join(moduleRoot(t), dst)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", dst)
	}
}

// moduleRoot is the repository root: the parent of this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// buildCorsgate builds cmd/corsgate into the test's temp dir.
func buildCorsgate(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the demo test builds cmd/corsgate and needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "corsgate")
	cmd := exec.CommandContext(t.Context(), goCmd, "build", "-o", bin, "./cmd/corsgate")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/corsgate: %v\n%s", err, out)
	}
	return bin
}

// startDemo runs `corsgate demo` on two free ports and returns the API and
// web URLs it prints. It is stopped with SIGINT when the test ends.
func startDemo(t *testing.T, bin string, args ...string) (api, web string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"demo", "--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"}, args...)...)
	urls := &urlWriter{found: make(chan struct{})}
	cmd.Stdout = urls
	cmd.Stderr = &testWriter{t: t, prefix: "corsgate demo: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("corsgate demo exited with %v after SIGINT", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("corsgate demo did not stop within 10s of SIGINT")
		}
	})
	select {
	case <-urls.found:
		return urls.api, urls.web
	case err := <-exited:
		exited <- err
		t.Fatalf("corsgate demo exited before printing its URLs: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatalf("corsgate demo printed no API and Web URLs within 20s")
	}
	return "", ""
}

// urlWriter reads the "API: " and "Web: " lines of corsgate demo's stdout
// and closes found once it has both.
type urlWriter struct {
	mu       sync.Mutex
	buf      strings.Builder
	api, web string
	found    chan struct{}
}

func (w *urlWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.api != "" && w.web != "" {
		return len(p), nil
	}
	w.buf.Write(p)
	for _, line := range strings.Split(w.buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "API: "); ok {
			w.api = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Web: "); ok {
			w.web = strings.TrimSpace(v)
		}
	}
	if w.api != "" && w.web != "" {
		close(w.found)
	}
	return len(p), nil
}

// testWriter logs a process's output through t.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(p), nil
}

// TestDemoCommand runs `corsgate demo` as a person would: its page, on the
// second origin, learns the API's URL from config.json; "Run all" fills the
// table as documented; /debug/calls shows that Greet over Connect arrived as
// GET and that the browser-barred ResetGreetings never ran. The screenshot is
// the README's.
func TestDemoCommand(t *testing.T) {
	t.Parallel()
	tab := newTab(t) // skips before the build when there is no browser
	bin := buildCorsgate(t)
	api, web := startDemo(t, bin)

	p := &page{t: t, ctx: tab}
	p.navigate(web + "/")
	ctx, cancel := context.WithTimeout(tab, tabTimeout)
	defer cancel()
	target, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.corsgateTest.target()`))
	if err != nil {
		t.Fatal(err)
	}
	if target != api {
		t.Fatalf("the page targets %q, want the demo's API %q (from config.json)", target, api)
	}
	saveScreenshot(t, p.runAll(wantStates(dropIn)), true)

	calls := debugCalls(t, api)
	var greetGET, reset int
	for _, c := range calls {
		if c.Procedure == "Greet" && c.HTTPMethod == http.MethodGet {
			greetGET++
		}
		if c.Procedure == "ResetGreetings" {
			reset++
		}
	}
	if greetGET != 2 { // Greet and Greet with an empty name
		t.Errorf("/debug/calls shows %d Greet calls as GET, want 2: %+v", greetGET, calls)
	}
	if reset != 0 {
		t.Errorf("/debug/calls shows %d ResetGreetings calls from the browser, want 0", reset)
	}
}

// debugCall is one entry of the demo's GET /debug/calls.
type debugCall struct {
	Procedure  string      `json:"procedure"`
	HTTPMethod string      `json:"httpMethod"`
	Header     http.Header `json:"header"`
}

func debugCalls(t *testing.T, api string) []debugCall {
	t.Helper()
	u, err := url.JoinPath(api, "/debug/calls")
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, res.Status)
	}
	var calls []debugCall
	if err := json.NewDecoder(res.Body).Decode(&calls); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return calls
}

// TestRunAllGateway: the page switched to a gateway URL (?gateway=) runs
// every client against the gateway, grpc-web's text mode included.
func TestRunAllGateway(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envConfig{mode: viaGateway})
	p := &page{t: t, ctx: newTab(t)}
	p.navigate(fmt.Sprintf("%s/?gateway=%s", e.pageURL, url.QueryEscape(e.apiURL)))
	saveScreenshot(t, p.runAll(wantStates(viaGateway)), false)
}
