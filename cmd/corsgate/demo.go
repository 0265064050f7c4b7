package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/corsgate/corsgate/example/web"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/config"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

func init() { register(newDemoCmd) }

const (
	defaultDemoListen    = "127.0.0.1:8080"
	defaultDemoWebListen = "127.0.0.1:8081"
	// demoCallsKept is how many calls /debug/calls remembers.
	demoCallsKept = 256
	// shutdownGrace is how long a stopping demo waits for open calls.
	shutdownGrace = 3 * time.Second
)

// demoFlags are the flags of corsgate demo.
type demoFlags struct {
	cors           cliflags.CORS
	listen         string
	webListen      string
	maxMessageSize int
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Serve the example greet service and its web page, CORS by the drop-in interceptor",
		Long: `Serve greet.v1.GreetService in-process through connect-go, wrapped by corsgate's
interceptor (drop-in mode), on --listen, and the example web page on --web-listen.
The two addresses are two origins; the page's origin is allowed by default, in
addition to any --allow-origin. Both listeners speak HTTP/1.1 and HTTP/2 without
TLS (h2c), so bidi streams work over HTTP/2. Ctrl-C stops the demo.

Demo-only endpoints: GET /debug/calls on the API origin lists, as JSON, the last
calls that reached the service (procedure, HTTP method, request headers), newest
last; ?since=N lists only calls with seq above N. GET /config.json on the web
origin tells the page the API's URL.`,
		Example: `  corsgate demo
  corsgate demo --allow-origin https://app.example.com --allow-credentials
  corsgate demo --strict --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), &f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", defaultDemoListen, "address of the API origin (host:port)")
	fs.StringVar(&f.webListen, "web-listen", defaultDemoWebListen, "address of the web page's origin (host:port); this origin is allowed by default")
	fs.IntVar(&f.maxMessageSize, "max-message-size", interceptor.DefaultMaxMessageSize, "largest request message in bytes, decompressed; larger ones fail with RESOURCE_EXHAUSTED")
	f.cors.Register(fs)
	return cmd
}

// runDemo listens, prints both URLs to stdout, and serves until ctx is done.
func runDemo(ctx context.Context, f *demoFlags, stdout, stderr io.Writer) error {
	log, err := cliflags.NewLogger(f.cors.LogLevel, stderr)
	if err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return cliflags.Usagef("--listen %q: %w", f.listen, err)
	}
	if _, _, err := net.SplitHostPort(f.webListen); err != nil {
		return cliflags.Usagef("--web-listen %q: %w", f.webListen, err)
	}
	if f.maxMessageSize <= 0 || f.maxMessageSize > config.MaxMessageSize {
		return cliflags.Usagef("--max-message-size %d: must be between 1 and %d", f.maxMessageSize, config.MaxMessageSize)
	}
	// Refuse a bad policy before taking the ports; the page's origin, added
	// once the ports are known, is always valid.
	if _, err := f.cors.Policy(log); err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	defer apiLn.Close()
	webLn, err := net.Listen("tcp", f.webListen)
	if err != nil {
		return fmt.Errorf("--web-listen: %w", err)
	}
	defer webLn.Close()

	apiURL, _ := originsOf(f.listen, apiLn.Addr())
	webURL, webOrigins := originsOf(f.webListen, webLn.Addr())
	d, err := newDemo(demoConfig{
		CORS:           f.cors,
		MaxMessageSize: f.maxMessageSize,
		WebOrigins:     webOrigins,
		APIURL:         apiURL,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "API: %s\nWeb: %s\n", apiURL, webURL); err != nil {
		return err
	}
	return d.serve(ctx, apiLn, webLn)
}

// originsOf returns the URL to print for a listener started from the address
// flag addr, and the origins a browser may use for it. An address without a
// host or with an unspecified IP is reached as localhost or 127.0.0.1; a host
// name is kept as given, since the origin is what the browser's address bar
// says, not the IP it resolves to.
func originsOf(addr string, bound net.Addr) (string, []string) {
	host, _, _ := net.SplitHostPort(addr)
	port := "0"
	if tcp, ok := bound.(*net.TCPAddr); ok {
		port = strconv.Itoa(tcp.Port)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		local := httpOrigin("localhost", port)
		return local, []string{local, httpOrigin("127.0.0.1", port)}
	}
	o := httpOrigin(host, port)
	return o, []string{o}
}

// httpOrigin serializes an http origin as browsers do: without port 80.
func httpOrigin(host, port string) string {
	if port == "80" {
		if strings.Contains(host, ":") {
			return "http://[" + host + "]"
		}
		return "http://" + host
	}
	return "http://" + net.JoinHostPort(host, port)
}

// demoConfig is what newDemo needs, taken from the flags.
type demoConfig struct {
	// CORS holds the shared CORS flags.
	CORS cliflags.CORS
	// WebOrigins are the web page's origins, allowed in addition to
	// CORS.AllowOrigins (unless those allow any origin already).
	WebOrigins []string
	// APIURL is the API's URL, told to the page by /config.json.
	APIURL string
	// Logger receives the interceptor's and the servers' logs.
	Logger *slog.Logger
	// MaxMessageSize bounds request messages; zero means
	// interceptor.DefaultMaxMessageSize.
	MaxMessageSize int
}

// demo is corsgate demo's pair of handlers.
type demo struct {
	// APIHandler serves greet.v1.GreetService behind the interceptor, and
	// GET /debug/calls.
	APIHandler http.Handler
	// WebHandler serves the example page and GET /config.json.
	WebHandler http.Handler

	log *slog.Logger
}

// newDemo builds the demo's handlers. A refused CORS configuration is a
// [cliflags.UsageError].
func newDemo(cfg demoConfig) (*demo, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := cfg.CORS
	if !slices.Contains(c.AllowOrigins, "*") {
		c.AllowOrigins = append(slices.Clone(c.AllowOrigins), cfg.WebOrigins...)
	}
	var opts []interceptor.Option
	if cfg.MaxMessageSize > 0 {
		opts = append(opts, interceptor.WithMaxMessageSize(cfg.MaxMessageSize))
	}
	policy, err := c.Policy(log, opts...)
	if err != nil {
		return nil, err
	}

	calls := &callLog{max: demoCallsKept}
	svc := greetsvc.NewConnect(&greetsvc.Greeter{Record: calls.add})
	api := http.NewServeMux()
	// connect-go reads messages of any size unless told: bound them, the
	// decompressed size included.
	api.Handle(policy.Wrap(greetv1connect.NewGreetServiceHandler(svc, connect.WithReadMaxBytes(policy.MaxMessageSize()))))
	api.Handle("GET /debug/calls", calls)

	pageConfig, err := json.Marshal(struct {
		API string `json:"api"`
	}{API: cfg.APIURL})
	if err != nil {
		return nil, fmt.Errorf("page config: %w", err)
	}
	page := http.NewServeMux()
	page.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(pageConfig)
	})
	page.Handle("/", http.FileServerFS(web.FS))

	return &demo{APIHandler: api, WebHandler: page, log: log}, nil
}

// newServer returns a server for h speaking HTTP/1.1 and HTTP/2 without TLS.
// It has no read or write timeout: streams may last.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// serve serves the API on apiLn and the page on webLn until ctx is done, then
// shuts both down, waiting up to shutdownGrace for open calls. It returns nil
// after a stop through ctx, and the error of a server that failed otherwise.
func (d *demo) serve(ctx context.Context, apiLn, webLn net.Listener) error {
	servers := []*http.Server{newServer(d.APIHandler, d.log), newServer(d.WebHandler, d.log)}
	listeners := []net.Listener{apiLn, webLn}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.Serve(listeners[i]) }()
	}
	var err error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if serr := s.Shutdown(sctx); serr != nil {
				d.log.Warn("open calls cut at shutdown", "error", serr)
				_ = s.Close()
			}
		})
	}
	wg.Wait()
	return err
}

// callLog keeps the last calls that reached the greet service and serves
// them as JSON. It is for demos and tests only: it shows request headers,
// credentials included.
type callLog struct {
	max int

	mu    sync.Mutex
	seq   uint64
	calls []loggedCall
}

// loggedCall is one call of GET /debug/calls.
type loggedCall struct {
	// Seq numbers calls from 1 in arrival order.
	Seq uint64 `json:"seq"`
	// Procedure is the method's name, for example "Greet".
	Procedure string `json:"procedure"`
	// HTTPMethod is "GET" or "POST".
	HTTPMethod string `json:"httpMethod"`
	// Header holds the request headers, canonical names.
	Header http.Header `json:"header"`
}

func (l *callLog) add(c greetsvc.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	if len(l.calls) == l.max {
		l.calls = slices.Delete(l.calls, 0, 1)
	}
	l.calls = append(l.calls, loggedCall{Seq: l.seq, Procedure: c.Procedure, HTTPMethod: c.HTTPMethod, Header: c.Header})
}

// ServeHTTP answers GET /debug/calls[?since=N].
func (l *callLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("since=%q is not a whole number", s), http.StatusBadRequest)
			return
		}
		since = n
	}
	l.mu.Lock()
	out := make([]loggedCall, 0, len(l.calls))
	for _, c := range l.calls {
		if c.Seq > since {
			out = append(out, c)
		}
	}
	l.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out) // a failed write means the client left
}
