package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
	_ "github.com/corsgate/corsgate/gen/greet/v1" // the example service, explained by default
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/config"
)

func init() { register(newExplainCmd) }

// defaultExplainTimeout bounds the wait for a backend's reflection.
const defaultExplainTimeout = 10 * time.Second

// explainFlags are the flags of corsgate explain.
type explainFlags struct {
	cors        cliflags.CORS
	origin      string
	procedure   string
	method      string
	headers     []string
	descriptors string
	configPath  string
	backend     string
	timeout     time.Duration
}

func newExplainCmd() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain --origin ORIGIN --procedure /pkg.Service/Method",
		Short: "Tell whether a browser would be allowed to call a procedure, and why",
		Long: `Explain what a browser at --origin calling --procedure with --method and the
request headers --header would get from corsgate with the given CORS flags: the
verdict, each check the policy makes with its outcome, and the exact headers of
the preflight answer and of the actual response.

With a --config that has backends and routes, explain resolves --procedure as
corsgate serve would (descriptors from each backend's file or reflection) and
shows the route and backend it goes to, and that route's policy.

Otherwise the procedures come from, in this order: the services of --config, the
descriptors of --descriptors (a buf image or FileDescriptorSet), the server
reflection of --backend, and otherwise the procedures linked into corsgate (the
greet example). A --config file also sets the CORS flags, --descriptors and
--backend from its keys of the same names; flags given on the command line win.

Exit status: 0 when the browser would be allowed, 1 when it would be refused,
2 for bad flags.`,
		Example: `  corsgate explain --origin https://app.example.com --allow-origin https://app.example.com \
      --procedure /greet.v1.GreetService/Greet --header authorization
  corsgate explain --origin https://app.example.com --procedure /greet.v1.GreetService/Greet \
      --method GET --config corsgate.yaml
  corsgate explain --origin http://localhost:5173 --allow-origin http://localhost:5173 \
      --backend 127.0.0.1:9090 --procedure /pkg.v1.Service/Method`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExplain(cmd.Context(), cmd.Flags(), &f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.origin, "origin", "", `the calling page's origin, as the browser sends it ("https://app.example.com")`)
	fs.StringVar(&f.procedure, "procedure", "", `the procedure's path ("/greet.v1.GreetService/Greet")`)
	fs.StringVar(&f.method, "method", http.MethodPost, "the HTTP method: POST, or GET for Connect GET")
	fs.StringArrayVar(&f.headers, "header", nil, "a request header the script sets (name only); repeatable")
	fs.StringVar(&f.descriptors, "descriptors", "", "buf image or FileDescriptorSet (binary) with the services")
	fs.StringVar(&f.configPath, "config", "", "gateway config file (YAML): its services and CORS keys")
	fs.StringVar(&f.backend, "backend", "", `gRPC backend to ask through server reflection ("host:port" or an http:// or https:// URL)`)
	fs.DurationVar(&f.timeout, "timeout", defaultExplainTimeout, "how long to wait for --backend's reflection")
	f.cors.Register(fs)
	_ = cmd.MarkFlagRequired("origin")
	_ = cmd.MarkFlagRequired("procedure")
	return cmd
}

// errRefused is returned when a browser would be refused: exit status 1.
var errRefused = errors.New("a browser would be refused")

func runExplain(ctx context.Context, fs *pflag.FlagSet, f *explainFlags, stdout, stderr io.Writer) error {
	file, err := loadCommandConfig(fs, f.configPath)
	if err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	log, err := cliflags.NewLogger(f.cors.LogLevel, stderr)
	if err != nil {
		return err
	}
	policy, err := f.cors.Policy(log)
	if err != nil {
		return err
	}
	var table *interceptor.Table
	var source string
	if file != nil && file.Has("backends") {
		if table, source, policy, err = f.routedTable(ctx, file, log); err != nil {
			return err
		}
	} else if table, source, err = f.table(ctx, file, policy, log); err != nil {
		return err
	}
	method := strings.ToUpper(strings.TrimSpace(f.method))
	ex := policy.Explain(table, f.origin, f.procedure, method, f.headers)
	printExplanation(stdout, f, method, source, ex)
	if !ex.Allowed {
		for _, c := range ex.Checks {
			if !c.OK {
				return fmt.Errorf("%w: %s: %s", errRefused, c.Name, c.Detail)
			}
		}
		return errRefused
	}
	return nil
}

// loadCommandConfig loads the config file at path, if any, into the flags
// of fs not given on the command line; keys of corsgate serve alone are
// skipped. It returns nil without a path.
func loadCommandConfig(fs *pflag.FlagSet, path string) (*config.File, error) {
	if path == "" {
		return nil, nil
	}
	file, err := config.Load(path)
	if err != nil {
		return nil, &cliflags.UsageError{Err: err}
	}
	values := file.Values()
	for k := range values {
		if fs.Lookup(k) == nil { // keys of serve alone (listen, tls-cert, ...)
			delete(values, k)
		}
	}
	if err := cliflags.ApplyUnchanged(fs, values); err != nil {
		return nil, err
	}
	return file, nil
}

// check refuses flag values no browser request could have.
func (f *explainFlags) check() error {
	if strings.TrimSpace(f.origin) == "" {
		return cliflags.Usagef("--origin is empty; give the page's origin, such as https://app.example.com")
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(f.procedure, "/"), "/")
	if !strings.HasPrefix(f.procedure, "/") || !ok || svc == "" || method == "" || strings.Contains(method, "/") {
		return cliflags.Usagef("--procedure %q: want a path such as /greet.v1.GreetService/Greet", f.procedure)
	}
	switch strings.ToUpper(strings.TrimSpace(f.method)) {
	case http.MethodGet, http.MethodPost:
	default:
		return cliflags.Usagef("--method %q: Connect, gRPC and gRPC-Web use GET or POST", f.method)
	}
	for _, h := range f.headers {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, ":, \t") {
			return cliflags.Usagef("--header %q: give one header name, without a value", h)
		}
	}
	if f.timeout <= 0 {
		return cliflags.Usagef("--timeout %v: must be positive", f.timeout)
	}
	return nil
}

// table builds the procedure table from the first source given and names it:
// the config's services, the descriptors, the backend's reflection, the
// linked procedures. The config's descriptors and backend keys have already
// been applied to f (flags given on the command line win), as serve does.
func (f *explainFlags) table(ctx context.Context, file *config.File, policy *interceptor.Policy, log *slog.Logger) (*interceptor.Table, string, error) {
	switch {
	case file != nil && file.Services != nil:
		t, err := interceptor.NewTable(file.Services...)
		if err != nil {
			return nil, "", &cliflags.UsageError{Err: fmt.Errorf("config %s: services: %w", f.configPath, err)}
		}
		return t, "services of " + f.configPath, nil
	case f.descriptors != "":
		files, err := gateway.LoadDescriptorFile(f.descriptors)
		if err != nil {
			return nil, "", &cliflags.UsageError{Err: fmt.Errorf("--descriptors: %w", err)}
		}
		t, err := tableOf(files)
		if err != nil {
			return nil, "", fmt.Errorf("--descriptors %s: %w", f.descriptors, err)
		}
		return t, "descriptors " + f.descriptors, nil
	case f.backend != "":
		t, err := reflectTable(ctx, f.backend, policy, f.timeout, log)
		if err != nil {
			return nil, "", err
		}
		return t, "reflection of " + f.backend, nil
	default:
		t, err := tableOf(protoregistry.GlobalFiles)
		if err != nil {
			return nil, "", err
		}
		return t, "procedures built into corsgate", nil
	}
}

func tableOf(files *protoregistry.Files) (*interceptor.Table, error) {
	services, err := interceptor.ServicesOf(files)
	if err != nil {
		return nil, err
	}
	return interceptor.NewTable(services...)
}

// reflectTable asks backend's server reflection through the gateway's code,
// so that explain derives the table exactly as `corsgate serve` would.
func reflectTable(ctx context.Context, backend string, policy *interceptor.Policy, timeout time.Duration, log *slog.Logger) (*interceptor.Table, error) {
	g, err := gateway.New(gateway.Config{Backend: backend, Policy: policy, ReflectionInterval: -1, Logger: log})
	if err != nil {
		return nil, &cliflags.UsageError{Err: fmt.Errorf("--backend: %w", err)}
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		return nil, fmt.Errorf("reflection of %s: %w", backend, err)
	}
	t := g.Table()
	if t == nil {
		return nil, fmt.Errorf("reflection of %s gave no procedures", backend)
	}
	return t, nil
}

// printExplanation writes the report: the verdict, the checks, and the
// headers of both responses.
func printExplanation(w io.Writer, f *explainFlags, method, source string, ex interceptor.Explanation) {
	verdict := "ALLOWED"
	if !ex.Allowed {
		verdict = "REFUSED"
	}
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	p("%s: %s from %s calling %s\n", verdict, method, f.origin, f.procedure)
	p("procedures: %s\n", source)
	p("\nchecks:\n")
	width := 0
	for _, c := range ex.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range ex.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		p("  %s  %-*s  %s\n", mark, width, c.Name, c.Detail)
	}
	p("\npreflight response (OPTIONS %s):\n", f.procedure)
	if len(ex.PreflightHeader) == 0 {
		p("  refused: no CORS headers, so the browser stops before the call\n")
	} else {
		printHeader(p, ex.PreflightHeader)
	}
	p("\nactual response (%s %s), CORS headers:\n", method, f.procedure)
	printHeader(p, ex.ActualHeader)
	if ex.ActualHeader.Get("Access-Control-Allow-Origin") == "" {
		p("  (no Access-Control-Allow-Origin: the script can't read the response)\n")
	}
}

func printHeader(p func(string, ...any), h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			p("  %s: %s\n", k, v)
		}
	}
}
