package interceptor

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxAge is the Access-Control-Max-Age a [Policy] sends when
// [WithMaxAge] is not given: 7200 s, the most Chromium honours.
const DefaultMaxAge = 7200 * time.Second

// MaxMaxAge is the largest max-age [New] accepts: 86400 s, the most Firefox
// honours. Longer values would be cut by every browser.
const MaxMaxAge = 86400 * time.Second

// DefaultMaxMessageSize is the message size bound a [Policy] has when
// [WithMaxMessageSize] is not given: 4 MiB, gRPC's default receive limit.
const DefaultMaxMessageSize = 4 << 20

// An Option configures a [Policy]. Options are applied in order after the
// defaults; later options add to list-valued settings and replace the others.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is what the options fill in; [New] validates it once.
type config struct {
	origins        []string
	originFunc     func(origin string) bool
	credentials    bool
	maxAge         time.Duration
	allowedHeaders []string
	exposedHeaders []string
	privateNetwork bool
	traceHeaders   bool
	strict         bool
	maxMessageSize int
	logger         *slog.Logger
	observer       func(Verdict)
	tracing        bool
	tracerProvider trace.TracerProvider
	propagator     propagation.TextMapPropagator
}

// defaultOptions are applied before the caller's options, through the same
// path.
func defaultOptions() []Option {
	return []Option{
		WithMaxAge(DefaultMaxAge),
		WithCredentials(false),
		WithPrivateNetwork(false),
		WithTraceHeaders(true),
		WithStrict(false),
		WithMaxMessageSize(DefaultMaxMessageSize),
	}
}

// WithAllowedOrigins adds origins allowed to call the service from a browser.
// Each is one of:
//
//   - an exact origin, "https://app.example.com" or "http://localhost:5173"
//     (scheme and host are lowercased; a default port such as ":443" for https
//     is dropped, because browsers never send it);
//   - a subdomain pattern, "https://*.example.com", which matches
//     "https://a.example.com" and "https://a.b.example.com" but neither
//     "https://example.com", another scheme, nor another port;
//   - "*", every origin (never together with credentials, and never "null").
//
// [New] refuses "null", origins without a scheme, origins with a path or a
// trailing slash, and patterns that could match hosts of somebody else.
// By default no origin is allowed: every preflight is refused. Calling it
// several times adds to the list; calling it with no argument is a no-op.
func WithAllowedOrigins(origins ...string) Option {
	return optionFunc(func(c *config) { c.origins = append(c.origins, origins...) })
}

// WithOriginFunc sets a function consulted for origins that
// [WithAllowedOrigins] does not allow. It is only called with syntactically
// valid, lowercase origins ("scheme://host[:port]"), never with "null". It must
// be safe for concurrent use and fast: it runs on every cross-origin request.
// When it returns true the request's origin is echoed in
// Access-Control-Allow-Origin. Default: none; nil removes a function set
// before.
func WithOriginFunc(fn func(origin string) bool) Option {
	return optionFunc(func(c *config) { c.originFunc = fn })
}

// WithCredentials sets whether browsers may send cookies and HTTP
// authentication with cross-origin calls (Access-Control-Allow-Credentials:
// true). Default false. [New] refuses credentials together with the "*" origin.
func WithCredentials(allow bool) Option {
	return optionFunc(func(c *config) { c.credentials = allow })
}

// WithMaxAge sets how long browsers may cache a preflight answer
// (Access-Control-Max-Age, whole seconds, rounded down). Default
// [DefaultMaxAge], 7200 s. Zero omits the header, so browsers use their own
// default of 5 s. [New] refuses negative values, values between 0 and 1 s, and
// values above [MaxMaxAge] (86400 s).
func WithMaxAge(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxAge = d })
}

// WithAllowedHeaders adds request headers browsers may send to every
// procedure, beyond the protocol headers and the proto-declared ones, for
// example "x-tenant". Names are case-insensitive. "*" allows any header name
// except Authorization, which must always be listed or declared by name.
// Default: none. Calling it several times adds to the list.
func WithAllowedHeaders(names ...string) Option {
	return optionFunc(func(c *config) { c.allowedHeaders = append(c.allowedHeaders, names...) })
}

// WithExposedHeaders adds response headers scripts may read on every
// procedure, beyond the protocol headers and the proto-declared ones. Names
// are case-insensitive. "*" (expose everything) is accepted only without
// credentials. Default: none. Calling it several times adds to the list.
func WithExposedHeaders(names ...string) Option {
	return optionFunc(func(c *config) { c.exposedHeaders = append(c.exposedHeaders, names...) })
}

// WithTraceHeaders sets whether every procedure allows the W3C trace
// context headers traceparent and tracestate and the W3C baggage header, as
// request headers (Access-Control-Allow-Headers). OpenTelemetry web
// instrumentation sends traceparent and tracestate on every fetch it
// instruments, and a preflight that does not allow them fails every call
// (whatwg/fetch#911). Default true; false allows them only where declared or
// given to [WithAllowedHeaders].
func WithTraceHeaders(allow bool) Option {
	return optionFunc(func(c *config) { c.traceHeaders = allow })
}

// WithPrivateNetwork sets whether preflights asking for private network
// access (Access-Control-Request-Private-Network: true) are answered with
// Access-Control-Allow-Private-Network: true. Default false: such preflights
// are answered without it, and the browser decides.
func WithPrivateNetwork(allow bool) Option {
	return optionFunc(func(c *config) { c.privateNetwork = allow })
}

// WithMaxMessageSize sets the largest request message, in bytes, of the
// drop-in entry points. connect-go reads messages of any size unless told
// otherwise: the handler constructors protoc-gen-corsgate generates pass
// connect.WithReadMaxBytes([Policy.MaxMessageSize]) to connect-go, and
// handlers given to [Policy.Wrap] should be built with it too. The gRPC-Web
// text translation of [Policy.Wrap], [Policy.WrapService],
// [Policy.WrapFiles] and [Policy.WrapTable] refuses a base64 body longer
// than twice the base64 length of one such message (whitespace and
// per-chunk padding allowed) with RESOURCE_EXHAUSTED. Default
// [DefaultMaxMessageSize]; zero or negative is refused by [New].
func WithMaxMessageSize(n int) Option {
	return optionFunc(func(c *config) { c.maxMessageSize = n })
}

// WithStrict sets strict mode. In strict mode a cross-origin actual request
// that CORS would not allow (origin not allowed, unknown or browser-barred
// procedure, method not allowed) is answered with PERMISSION_DENIED in the
// caller's protocol and never reaches the handler; the error carries a
// google.rpc.ErrorInfo detail (domain [StrictErrorDomain], reason
// CORS_REFUSED, metadata "check" = the failed [Reason]). The answer has no
// CORS headers, so a browser script sees a network error whatever the
// protocol; other clients decode the code. Same-origin requests (no
// Origin header, or an Origin equal to the request's own scheme and host) are
// never affected. Default false: such requests reach the handler, but their
// responses carry no CORS headers, so the browser hides them from the script;
// only cross-origin requests to browser-barred procedures are refused in
// either mode.
func WithStrict(strict bool) Option {
	return optionFunc(func(c *config) { c.strict = strict })
}

// WithLogger sets the logger for refusals, logged at debug level with the
// failed check. Default (and nil): [slog.Default] at the time of logging.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithObserver sets a function told of every preflight and every cross-origin
// actual request, for metrics. It runs on the request path: it must be safe
// for concurrent use and fast. Default: none; nil removes one set before.
func WithObserver(fn func(Verdict)) Option {
	return optionFunc(func(c *config) { c.observer = fn })
}
