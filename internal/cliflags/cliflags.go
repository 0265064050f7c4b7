// Package cliflags holds the command-line flags every corsgate command shares:
// the CORS policy flags, the log level, and the [UsageError] that makes a
// command exit with status 2.
//
// A command registers the flags on its flag set, lets cobra parse them, then
// builds its policy:
//
//	var c cliflags.CORS
//	c.Register(cmd.Flags())
//	// in RunE:
//	log, err := cliflags.NewLogger(c.LogLevel, cmd.ErrOrStderr())
//	policy, err := c.Policy(log)
//
// The flags, with their defaults:
//
//	--allow-origin       origins allowed to call (repeatable or comma-separated); none by default
//	--allow-header       extra request headers allowed for every procedure (repeatable)
//	--expose-header      extra response headers exposed for every procedure (repeatable)
//	--allow-credentials  send Access-Control-Allow-Credentials: true (default false)
//	--max-age            how long browsers may cache a preflight (default 2h)
//	--private-network    answer Private Network Access preflights (default false)
//	--trace-headers      allow traceparent, tracestate and baggage on every procedure (default true)
//	--strict             refuse disallowed cross-origin requests with PERMISSION_DENIED (default false)
//	--log-level          debug, info, warn or error (default info)
//
// --max-age takes a Go duration ("2h", "90m", "30s") or a whole number of
// seconds ("7200"), so it reads the same in flags and in config files, where
// max-age is given in seconds. The value must be whole seconds; 0 omits
// Access-Control-Max-Age (browsers then cache for 5 s); the interceptor
// refuses more than 24h. Browsers cap it anyway (Chromium at 2h, Firefox at
// 24h).
//
// A value the interceptor refuses comes back as its
// [interceptor.ConfigError] said in flag terms ([FlagError]) or, for
// internal/config, in config-key terms ([KeyTerms]), both through
// [OptionNames], the one table of option, flag and key names.
package cliflags

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/corsgate/corsgate/interceptor"
)

// Flag names, equal to the keys of the config file.
const (
	FlagAllowOrigin      = "allow-origin"
	FlagAllowHeader      = "allow-header"
	FlagExposeHeader     = "expose-header"
	FlagAllowCredentials = "allow-credentials"
	FlagMaxAge           = "max-age"
	FlagPrivateNetwork   = "private-network"
	FlagStrict           = "strict"
	FlagTraceHeaders     = "trace-headers"
	FlagLogLevel         = "log-level"
)

// DefaultMaxAge is the default of --max-age: 2h, Chromium's cap.
const DefaultMaxAge = 2 * time.Hour

// CORS holds the values of the shared CORS flags. Its zero value is a policy
// that allows no origin; [CORS.Register] sets the flag defaults.
type CORS struct {
	// AllowOrigins are the origins allowed to call: exact origins
	// ("https://app.example.com"), subdomain patterns
	// ("https://*.example.com") or "*" for any.
	AllowOrigins []string
	// AllowHeaders are request headers allowed for every procedure, in
	// addition to the protocol headers and the proto-declared ones.
	AllowHeaders []string
	// ExposeHeaders are response headers exposed for every procedure, in
	// addition to the protocol headers and the proto-declared ones.
	ExposeHeaders []string
	// AllowCredentials lets browsers send cookies and HTTP authentication.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer.
	MaxAge time.Duration
	// PrivateNetwork answers Private Network Access preflights.
	PrivateNetwork bool
	// Strict refuses disallowed cross-origin requests with PERMISSION_DENIED
	// before they reach the handler.
	Strict bool
	// TraceHeaders allows the W3C trace context and baggage headers
	// (traceparent, tracestate, baggage) on every procedure.
	TraceHeaders bool
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string
}

// Register defines the shared flags on fs, bound to c, and sets c's fields to
// the flag defaults.
func (c *CORS) Register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&c.AllowOrigins, FlagAllowOrigin, nil,
		`origin allowed to call, exact ("https://app.example.com"), a subdomain pattern ("https://*.example.com") or "*"; repeatable`)
	fs.StringSliceVar(&c.AllowHeaders, FlagAllowHeader, nil,
		"extra request header allowed for every procedure; repeatable")
	fs.StringSliceVar(&c.ExposeHeaders, FlagExposeHeader, nil,
		"extra response header exposed to scripts for every procedure; repeatable")
	fs.BoolVar(&c.AllowCredentials, FlagAllowCredentials, false,
		"allow cookies and HTTP authentication (Access-Control-Allow-Credentials: true); refused with origin \"*\"")
	c.MaxAge = DefaultMaxAge
	fs.Var((*maxAgeValue)(&c.MaxAge), FlagMaxAge,
		`how long browsers may cache a preflight: a duration ("2h", "90m") or whole seconds ("7200"); at most 24h`)
	fs.BoolVar(&c.PrivateNetwork, FlagPrivateNetwork, false,
		"answer Private Network Access preflights (Access-Control-Allow-Private-Network: true)")
	fs.BoolVar(&c.Strict, FlagStrict, false,
		"answer cross-origin requests from disallowed origins with PERMISSION_DENIED instead of passing them on")
	fs.BoolVar(&c.TraceHeaders, FlagTraceHeaders, true,
		"allow the trace context headers traceparent, tracestate and baggage on every procedure (OpenTelemetry web sends them on every fetch)")
	c.LogLevel = "info"
	fs.Var((*levelValue)(&c.LogLevel), FlagLogLevel, "log level: debug, info, warn or error")
}

// Options returns the interceptor options for c's values. Empty lists give no
// option, so the interceptor's defaults apply.
func (c *CORS) Options() []interceptor.Option {
	opts := make([]interceptor.Option, 0, 7)
	if len(c.AllowOrigins) > 0 {
		opts = append(opts, interceptor.WithAllowedOrigins(c.AllowOrigins...))
	}
	if len(c.AllowHeaders) > 0 {
		opts = append(opts, interceptor.WithAllowedHeaders(c.AllowHeaders...))
	}
	if len(c.ExposeHeaders) > 0 {
		opts = append(opts, interceptor.WithExposedHeaders(c.ExposeHeaders...))
	}
	return append(opts,
		interceptor.WithCredentials(c.AllowCredentials),
		interceptor.WithMaxAge(c.MaxAge),
		interceptor.WithPrivateNetwork(c.PrivateNetwork),
		interceptor.WithStrict(c.Strict),
		interceptor.WithTraceHeaders(c.TraceHeaders),
	)
}

// Policy builds the interceptor policy for c's values, logging to log, with
// extra options applied last. Since every value comes from the command line
// or a config file, a refused value is returned as a [UsageError] naming
// the flag (see [FlagError]).
func (c *CORS) Policy(log *slog.Logger, extra ...interceptor.Option) (*interceptor.Policy, error) {
	opts := append(c.Options(), interceptor.WithLogger(log))
	p, err := interceptor.New(append(opts, extra...)...)
	if err != nil {
		return nil, FlagError(err)
	}
	return p, nil
}

// NewLogger returns a text logger writing to w at level, one of "debug",
// "info", "warn" or "error" (any case). Another level is a [UsageError].
func NewLogger(level string, w io.Writer) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--%s: %w", FlagLogLevel, err)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("unknown log level %q: use debug, info, warn or error", s)
	}
}

// levelValue is the pflag.Value of --log-level: it refuses unknown levels
// while the flags are parsed.
type levelValue string

func (v *levelValue) Set(s string) error {
	if _, err := parseLevel(s); err != nil {
		return err
	}
	*v = levelValue(strings.ToLower(strings.TrimSpace(s)))
	return nil
}

func (v *levelValue) String() string { return string(*v) }
func (v *levelValue) Type() string   { return "level" }

// maxAgeValue is the pflag.Value of --max-age.
type maxAgeValue time.Duration

func (v *maxAgeValue) Set(s string) error {
	d, err := ParseMaxAge(s)
	if err != nil {
		return err
	}
	*v = maxAgeValue(d)
	return nil
}

func (v *maxAgeValue) String() string { return formatDuration(time.Duration(*v)) }
func (v *maxAgeValue) Type() string   { return "duration" }

// ParseMaxAge parses a --max-age value: a Go duration ("2h", "90m", "0s") or a
// whole number of seconds ("7200"). Negative values and fractions of a second
// are refused, by [CheckMaxAge]; values above the interceptor's maximum parse
// and are refused by [CORS.Policy], with the rest of the configuration.
func ParseMaxAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, fmt.Errorf("max-age %q is too large", s)
		}
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("max-age %q is neither a duration (\"2h\", \"90m\") nor whole seconds (\"7200\")", s)
		}
	}
	if d < 0 || d%time.Second != 0 {
		return 0, CheckMaxAge(d)
	}
	return d, nil
}

// formatDuration prints d without zero units: 2h, 1h30m, 90s → 1m30s, 0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UsageError reports a command line or config that can't work: a bad flag
// value, a missing or extra argument, a refused combination of settings.
// corsgate exits with status 2 for it and 1 for other errors.
type UsageError struct {
	// Err says what is wrong.
	Err error
}

// Usagef returns a [UsageError] with a message formatted like fmt.Errorf.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the error inside.
func (e *UsageError) Unwrap() error { return e.Err }

// IsUsage reports whether err is or wraps a [UsageError].
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}
