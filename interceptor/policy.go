package interceptor

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Policy is a validated CORS policy: which origins may call, with or without
// credentials, and the deployment-wide header lists. Per-procedure rules come
// from a [Table]; [Policy.Handler] combines both. A Policy is immutable and
// safe for concurrent use.
type Policy struct {
	origins        *originMatcher
	credentials    bool
	strict         bool
	privateNetwork bool
	traceHeaders   bool // traceparent, tracestate and baggage allowed
	maxMessageSize int
	logger         *slog.Logger
	observer       func(Verdict)
	tracer         *tracer // nil: no spans

	allowedHeaders []string // lowercase, without "*"
	anyHeader      bool     // "*" in WithAllowedHeaders
	exposedHeaders []string // canonical, "*" kept

	// Precomputed header values, shared by every handler.
	maxAge []string // nil when omitted
}

// Precomputed values of fixed headers. They are never modified.
var (
	valueTrue          = []string{"true"}
	valueStar          = []string{"*"}
	valueVaryOrigin    = []string{"Origin"}
	valueVaryPreflight = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
	valueVaryPNA       = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network"}
)

// Canonical names of the headers the policy reads and writes.
const (
	hOrigin     = "Origin"
	hACRM       = "Access-Control-Request-Method"
	hACRH       = "Access-Control-Request-Headers"
	hACRPN      = "Access-Control-Request-Private-Network"
	hACAO       = "Access-Control-Allow-Origin"
	hACAC       = "Access-Control-Allow-Credentials"
	hACAM       = "Access-Control-Allow-Methods"
	hACAH       = "Access-Control-Allow-Headers"
	hACEH       = "Access-Control-Expose-Headers"
	hMaxAge     = "Access-Control-Max-Age"
	hACAPN      = "Access-Control-Allow-Private-Network"
	hVary       = "Vary"
	headerStart = "Access-Control-"
)

// New validates the options and returns a policy. It refuses, with a
// [*ConfigError] quoting the value and saying the fix: "*" with credentials, "null", an
// origin without scheme or with a path or trailing slash, a pattern that
// could match hosts of somebody else, an empty or malformed header name, and
// a max-age that is negative or above [MaxMaxAge]. Defaults: no origin
// allowed, no credentials, max-age [DefaultMaxAge], no private network
// access, trace context headers allowed, not strict, messages up to [DefaultMaxMessageSize], logging to
// [slog.Default].
func New(opts ...Option) (*Policy, error) {
	var c config
	for _, o := range defaultOptions() {
		o.apply(&c)
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	origins, err := newOriginMatcher(c.origins, c.originFunc, c.credentials)
	if err != nil {
		return nil, err
	}
	p := &Policy{
		origins:        origins,
		credentials:    c.credentials,
		strict:         c.strict,
		privateNetwork: c.privateNetwork,
		traceHeaders:   c.traceHeaders,
		maxMessageSize: c.maxMessageSize,
		logger:         c.logger,
		observer:       c.observer,
		tracer:         newTracer(&c),
	}
	if c.maxMessageSize <= 0 {
		return nil, &ConfigError{Option: OptionMaxMessageSize, Value: strconv.Itoa(c.maxMessageSize),
			Reason: "must be more than 0 bytes", Fix: "the default is " + strconv.Itoa(DefaultMaxMessageSize) + " (4 MiB)"}
	}
	if err := CheckMaxAge(c.maxAge); err != nil {
		return nil, err
	}
	if c.maxAge > 0 {
		p.maxAge = []string{strconv.FormatInt(int64(c.maxAge/time.Second), 10)}
	}
	for _, h := range c.allowedHeaders {
		if h == "*" {
			p.anyHeader = true
			continue
		}
		if err := checkOptionHeader(OptionAllowedHeaders, h); err != nil {
			return nil, err
		}
	}
	for _, h := range c.exposedHeaders {
		if h == "*" && c.credentials {
			return nil, &ConfigError{Option: OptionExposedHeaders, Value: h, With: OptionCredentials,
				Reason: `browsers read it as a header named "*"`, Fix: "list the header names instead"}
		}
		if err := checkOptionHeader(OptionExposedHeaders, h); err != nil {
			return nil, err
		}
	}
	for _, h := range c.allowedHeaders {
		if h != "*" {
			p.allowedHeaders = appendUnique(p.allowedHeaders, strings.ToLower, h)
		}
	}
	p.exposedHeaders = appendUnique(nil, canonical, c.exposedHeaders...)
	return p, nil
}

// log returns the logger to use.
func (p *Policy) log() *slog.Logger {
	if p.logger != nil {
		return p.logger
	}
	return slog.Default()
}

// logRefusal writes the debug line of a refusal; it costs nothing when debug
// logging is off.
func (p *Policy) logRefusal(ctx context.Context, msg string, reason Reason, origin, path, detail string) {
	l := p.log()
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.LogAttrs(ctx, slog.LevelDebug, msg,
		slog.String("check", reason.String()),
		slog.String("origin", origin),
		slog.String("path", path),
		slog.String("detail", detail),
	)
}

func (p *Policy) observe(v Verdict) {
	if p.observer != nil {
		p.observer(v)
	}
}

// MaxMessageSize returns the largest request message the policy's drop-in
// entry points accept (see [WithMaxMessageSize]): pass it to connect-go as
// connect.WithReadMaxBytes(policy.MaxMessageSize()).
func (p *Policy) MaxMessageSize() int { return p.maxMessageSize }
