// Package interceptor is corsgate's CORS layer for Connect, gRPC-Web and gRPC
// handlers: HTTP middleware that answers preflights and decorates actual
// responses with rules derived per procedure from protobuf descriptors.
//
// A CORS layer cannot be a connect.Interceptor, because preflights never
// reach RPC handlers; it is an [http.Handler] in front of them. The drop-in
// form wraps a connect-go handler:
//
//	policy, err := interceptor.New(interceptor.WithAllowedOrigins("https://app.example.com"))
//	if err != nil { ... }
//	mux.Handle(policy.Wrap(greetv1connect.NewGreetServiceHandler(svc)))
//
// [New] builds a [Policy] from deployment settings (origins, credentials,
// max-age, extra headers, strict mode). [ServiceOf] derives each procedure's
// rules from its descriptor: POST, plus GET for unary methods with
// idempotency_level NO_SIDE_EFFECTS; the request headers Connect and gRPC-Web
// clients send, plus those declared with the (corsgate.v1.method) and
// (corsgate.v1.service) options; the response headers and trailers to expose
// (each trailer also as "Trailer-<name>", as Connect unary sends it).
// [Table] holds those rules as plain data, as generated code and config files
// carry them; [Policy.Handler] combines a policy and a table, precomputing
// every header value so requests cost no allocation. [WithTracing] adds an
// OpenTelemetry server span per call, as connectrpc.com/otelconnect makes
// them, with the CORS verdict.
//
// # Security
//
// The policy is conservative by construction:
//
//   - [New] refuses configurations browsers would reject or that open more
//     than intended: "*" with credentials, the "null" origin (sandboxed
//     iframes and file: pages send it; anyone can), origins with a path,
//     trailing slash or no scheme, and subdomain patterns that could match
//     somebody else's hosts ("https://*example.com", "https://example.*",
//     "https://*.com", "https://*.co.uk", "https://*.github.io").
//   - Exact origins are compared byte for byte with the serialized origin a
//     browser sends. A pattern "https://*.example.com" matches only
//     https hosts ending in ".example.com" on the default port: not
//     "https://example.com.evil.com", "https://evilexample.com",
//     "http://a.example.com" or "https://a.example.com:8443".
//   - Access-Control-Allow-Origin is the request's origin (or "*" when every
//     origin is allowed without credentials), never a list; "Vary: Origin" is
//     on every response the policy governs, and preflight answers also vary
//     on the request method and headers, so caches cannot mix answers.
//   - Access-Control-Request-Headers is parsed in any case, order and
//     spacing, over several header lines, without allocating per element; a
//     preflight is refused past 64 names, 16 empty elements, 16 lines or
//     4 KiB, so a hostile list costs no more than a short one.
//     "*" in [WithAllowedHeaders] never covers Authorization.
//   - A refused preflight gets 403 without any CORS header, and a debug log
//     line naming the failed check. Procedures marked browser_barred are
//     always refused, their cross-origin actual requests too
//     (PERMISSION_DENIED), strict mode or not.
//   - CORS headers the wrapped handler sets itself are dropped, so a response
//     never carries two Access-Control-Allow-Origin values.
//   - CORS only tells browsers which responses a script may read; it does not
//     stop a request from reaching the server (simple requests, such as a
//     Connect GET, are sent without preflight). [WithStrict] refuses
//     cross-origin requests the policy does not allow before they reach the
//     handler, with PERMISSION_DENIED in the caller's protocol. Same-origin
//     detection uses the connection's scheme (https when TLS ends in this
//     process) and the Host header; behind a TLS-terminating proxy,
//     same-origin browser requests look cross-origin, so list your own origin
//     among the allowed ones when you turn strict mode on there.
//   - Authentication is not CORS's job: with credentials, any allowed origin
//     can make the browser send cookies. Allow only origins you trust.
package interceptor
