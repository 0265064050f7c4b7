package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMain stops the shared browser after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

// browserFlags are Chromium's flags: headless, no sandbox (tests run as root
// in CI), and nothing that reaches the network on its own.
func browserFlags(execPath, userDataDir string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(userDataDir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1400, 1000),
	)
}

// chromiumPath finds the browser: CORSGATE_CHROMIUM, else a Chromium or
// Chrome on PATH. It returns "" when there is none.
func chromiumPath() string {
	if p := os.Getenv("CORSGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// sharedBrowser is one Chromium for the whole test binary; every test opens
// its own tabs in it.
type sharedBrowser struct {
	once    sync.Once
	ctx     context.Context
	cancels []context.CancelFunc
	dir     string
	err     error
}

var shared sharedBrowser

func (b *sharedBrowser) start() {
	path := chromiumPath()
	if path == "" {
		b.err = errNoBrowser
		return
	}
	dir, err := os.MkdirTemp("", "corsgate-e2e-chromium-")
	if err != nil {
		b.err = err
		return
	}
	b.dir = dir
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browserFlags(path, dir)...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	b.cancels = []context.CancelFunc{cancelBrowser, cancelAlloc}
	// The first action starts the browser; it must have no deadline, or the
	// deadline would stop the browser.
	if err := chromedp.Do(bctx); err != nil {
		b.err = fmt.Errorf("start %s: %w", path, err)
		return
	}
	b.ctx = bctx
}

func (b *sharedBrowser) stop() {
	for _, c := range b.cancels {
		c()
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

var errNoBrowser = errors.New("no Chromium found: install it (apt-get install chromium) or set CORSGATE_CHROMIUM")

// newTab opens a tab in the shared browser, closed when the test ends. A
// missing browser skips the test, or fails it when CI=true.
func newTab(t *testing.T) context.Context {
	t.Helper()
	shared.once.Do(shared.start)
	if shared.err != nil {
		if errors.Is(shared.err, errNoBrowser) && os.Getenv("CI") != "true" {
			t.Skip(shared.err)
		}
		t.Fatal(shared.err)
	}
	ctx, cancel := chromedp.NewContext(shared.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// tabTimeout bounds every browser step of a test.
const tabTimeout = 30 * time.Second

// page is the demo page loaded in a tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

// openPage loads the demo page from pageURL in a new tab, pointed at api,
// and waits for window.corsgateTest.
func openPage(t *testing.T, pageURL, api string) *page {
	t.Helper()
	p := &page{t: t, ctx: newTab(t)}
	p.navigate(pageURL + "/?api=" + url.QueryEscape(api))
	return p
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, tabTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// navigate loads u and, when it is the demo page, waits until it is ready.
func (p *page) navigate(u string) {
	p.t.Helper()
	p.do(chromedp.Navigate(u))
	if strings.Contains(u, "/e2e/") {
		return
	}
	p.waitReady()
}

// waitReady waits for window.corsgateTest. It polls from Go with plain
// evaluations: chromedp's Poll can pick the execution context of the page
// before a navigation and fail.
func (p *page) waitReady() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, tabTimeout)
	defer cancel()
	for {
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!(window.corsgateTest && window.corsgateTest.ready)"))
		if err == nil && ready {
			return
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("the demo page did not get ready: %v (last error: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runOptions mirrors RunOptions of example/web/src/calls/types.ts.
type runOptions struct {
	Client      string            `json:"client"`
	Method      string            `json:"method"`
	Target      string            `json:"target"`
	Name        string            `json:"name"`
	Greeting    string            `json:"greeting,omitempty"`
	Count       int               `json:"count,omitempty"`
	IntervalMs  int               `json:"intervalMs,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Credentials bool              `json:"credentials,omitempty"`
	TimeoutMs   int               `json:"timeoutMs,omitempty"`
}

// runResult mirrors RunResult of example/web/src/calls/types.ts.
type runResult struct {
	Client     string            `json:"client"`
	Method     string            `json:"method"`
	Supported  bool              `json:"supported"`
	OK         bool              `json:"ok"`
	Code       string            `json:"code"`
	Message    string            `json:"message"`
	Details    []errorDetail     `json:"details"`
	Headers    map[string]string `json:"headers"`
	Trailers   map[string]string `json:"trailers"`
	HTTPStatus int               `json:"httpStatus"`
	Messages   []json.RawMessage `json:"messages"`
}

type errorDetail struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// String shows a result in failure messages.
func (r runResult) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// run makes one call through window.corsgateTest.run.
func (p *page) run(opts runOptions) runResult {
	p.t.Helper()
	arg, err := json.Marshal(opts)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, tabTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[runResult](
		fmt.Sprintf("window.corsgateTest.run(%s)", arg), chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("run %s %s: %v", opts.Client, opts.Method, err)
	}
	return res
}
