package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/wire"
)

// The error-shape matrix: every protocol a client speaks to corsgate ×
// HTTP/1.1 and HTTP/2 × where the error comes from (a strict-mode refusal
// written by the interceptor, an error the backend returned and the gateway
// translated, an error the gateway made itself), each decoded the way that
// protocol's clients decode it: connect-go's client for Connect, gRPC-Web
// binary and gRPC, and for gRPC-Web text a small reader that does what the
// grpc-web JS client does (base64 body, trailer frame, else the status in
// the exposed headers of a trailers-only answer).

const (
	shapeOrigin    = "https://evil.example" // not allowed: strict mode refuses it
	shapeLimit     = 64                     // the gateway's MaxMessageSize
	shapeDetail    = "SHAPE_TEST"           // ErrorInfo reason of the backend's error
	shapeBackendMs = "backend says no"
)

// shapeSource is where an error of the matrix comes from.
type shapeSource struct {
	name   string
	origin string
	name_  string // the request's name field
	code   connect.Code
	// message is the exact message; messagePart, when set, a part of it
	// (the gateway's limit messages depend on how the body was framed).
	message, messagePart string
	// reason is the ErrorInfo reason of the expected detail, "" for none.
	reason string
	// exposed: the origin is allowed, so the answer carries CORS headers
	// that expose the status headers.
	exposed bool
}

var shapeSources = []shapeSource{
	{
		name: "strict refusal", origin: shapeOrigin, name_: "Ada", code: connect.CodePermissionDenied,
		message: "corsgate: cross-origin call refused by the CORS policy (check: origin)", reason: "CORS_REFUSED",
	},
	{
		name: "backend error", origin: testOrigin, name_: "fail", code: connect.CodeFailedPrecondition,
		message: shapeBackendMs, reason: shapeDetail, exposed: true,
	},
	{
		name: "gateway error", origin: testOrigin, name_: strings.Repeat("x", 2*shapeLimit), code: connect.CodeResourceExhausted,
		messagePart: "is larger than the limit of", exposed: true,
	},
}

// shapeProtocol is one client protocol of the matrix.
type shapeProtocol struct {
	name   string
	opts   []connect.ClientOption
	stream bool // call the server-streaming method
	text   bool // gRPC-Web text, decoded by hand
	h1     bool // runs over HTTP/1.1 too (gRPC needs HTTP/2)
}

var shapeProtocols = []shapeProtocol{
	{name: "connect unary", h1: true},
	{name: "connect streaming", stream: true, h1: true},
	{name: "grpc-web binary", opts: []connect.ClientOption{connect.WithGRPCWeb()}, h1: true},
	{name: "grpc-web binary streaming", opts: []connect.ClientOption{connect.WithGRPCWeb()}, stream: true, h1: true},
	{name: "grpc-web text", text: true, h1: true},
	{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpc streaming", opts: []connect.ClientOption{connect.WithGRPC()}, stream: true},
}

// shapeBackend serves greetd whose GreetService calls with the name "fail"
// return FAILED_PRECONDITION with an ErrorInfo detail and no metadata.
func shapeBackend(tb testing.TB) string {
	tb.Helper()
	fail := func() error {
		st, err := status.New(codes.FailedPrecondition, shapeBackendMs).WithDetails(&errdetails.ErrorInfo{Reason: shapeDetail, Domain: "test"})
		if err != nil {
			return err
		}
		return st.Err()
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if r, ok := req.(*greetv1.GreetRequest); ok && r.GetName() == "fail" {
			return nil, fail()
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod != "/greet.v1.GreetService/GreetStream" {
			return h(srv, ss)
		}
		var req greetv1.GreetStreamRequest
		if err := ss.RecvMsg(&req); err != nil {
			return err
		}
		if req.GetName() == "fail" {
			return fail()
		}
		return status.Error(codes.Internal, "the test sends only failing streams")
	}
	return startBackend(tb, nil, grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
}

func TestErrorShapeMatrix(t *testing.T) {
	t.Parallel()
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin), interceptor.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	g, gwURL := startGateway(t, shapeBackend(t), func(c *gateway.Config) {
		c.Policy = policy
		c.MaxMessageSize = shapeLimit
	})
	waitReady(t, g)
	for _, src := range shapeSources {
		for _, p := range shapeProtocols {
			for _, h2 := range []bool{false, true} {
				if !h2 && !p.h1 {
					continue
				}
				name := src.name + "/" + p.name + map[bool]string{false: "/h1", true: "/h2c"}[h2]
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					var got shapeError
					if p.text {
						got = callGRPCWebText(t, gwURL, shapeHTTPClient(t, h2, src.origin), src.name_)
					} else {
						got = callConnectGo(t, gwURL, shapeHTTPClient(t, h2, src.origin), p, src.name_)
					}
					checkShape(t, got, src)
					if p.text && !got.trailersOnly {
						t.Errorf("gRPC-Web text error in a trailer frame, want trailers-only (no metadata)")
					}
				})
			}
		}
	}
}

// shapeError is what a client decoded.
type shapeError struct {
	code    connect.Code
	message string
	details []proto.Message
	header  http.Header // response headers (connect-go: the error's metadata)
	// trailersOnly: the status came in the headers with an empty body
	// (known for the hand-decoded gRPC-Web text only).
	trailersOnly bool
}

func checkShape(tb testing.TB, got shapeError, src shapeSource) {
	tb.Helper()
	if got.code != src.code {
		tb.Errorf("code %v (message %q), want %v", got.code, got.message, src.code)
	}
	switch {
	case src.messagePart != "" && !strings.Contains(got.message, src.messagePart):
		tb.Errorf("message %q, want one with %q", got.message, src.messagePart)
	case src.messagePart == "" && got.message != src.message:
		tb.Errorf("message %q, want %q", got.message, src.message)
	}
	var reasons []string
	for _, d := range got.details {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reasons = append(reasons, info.GetReason())
		}
	}
	if src.reason == "" && len(got.details) != 0 {
		tb.Errorf("details %v, want none", got.details)
	}
	if src.reason != "" && (len(reasons) != 1 || reasons[0] != src.reason) {
		tb.Errorf("ErrorInfo reasons %q (details %v), want [%s]", reasons, got.details, src.reason)
	}
	acao := got.header.Get("Access-Control-Allow-Origin")
	if !src.exposed {
		if acao != "" {
			tb.Errorf("a refusal carries Access-Control-Allow-Origin %q", acao)
		}
		return
	}
	if acao != testOrigin {
		tb.Errorf("Access-Control-Allow-Origin %q, want %q", acao, testOrigin)
	}
	aceh := strings.ToLower(strings.Join(got.header.Values("Access-Control-Expose-Headers"), ","))
	for _, h := range []string{"grpc-status", "grpc-message", "grpc-status-details-bin"} {
		if !strings.Contains(aceh, h) {
			tb.Errorf("Access-Control-Expose-Headers %q lacks %s: a browser could not read a trailers-only status", aceh, h)
		}
	}
}

// shapeHTTPClient is a client over HTTP/1.1 or h2c that sends origin.
func shapeHTTPClient(tb testing.TB, h2 bool, origin string) *http.Client {
	tb.Helper()
	var p http.Protocols
	if h2 {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &p}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: originTransport{next: headerTransport{next: tr, origin: origin}}}
}

// headerTransport sets Origin before originTransport would default it.
type headerTransport struct {
	next   http.RoundTripper
	origin string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r.Header.Set("Origin", h.origin)
	return h.next.RoundTrip(r)
}

func callConnectGo(tb testing.TB, baseURL string, hc *http.Client, p shapeProtocol, name string) shapeError {
	tb.Helper()
	c := greetv1connect.NewGreetServiceClient(hc, baseURL, p.opts...)
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	var err error
	if p.stream {
		s, serr := c.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: name, Count: 1}))
		err = serr
		if serr == nil {
			for s.Receive() {
				tb.Errorf("received a message")
			}
			err = s.Err()
			_ = s.Close()
		}
	} else {
		_, err = c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: name}))
	}
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		tb.Fatalf("error %v, want a *connect.Error", err)
	}
	out := shapeError{code: cerr.Code(), message: cerr.Message(), header: cerr.Meta()}
	for _, d := range cerr.Details() {
		v, err := d.Value()
		if err != nil {
			tb.Fatalf("detail %s: %v", d.Type(), err)
		}
		out.details = append(out.details, v)
	}
	return out
}

// callGRPCWebText calls Greet in gRPC-Web text mode and decodes the answer
// as the grpc-web JS client does: the body is base64 of frames; the status
// is in the trailer frame (flag 0x80) or, when the body holds none, in the
// response headers a script can read (trailers-only).
func callGRPCWebText(tb testing.TB, baseURL string, hc *http.Client, name string) shapeError {
	tb.Helper()
	msg, err := proto.Marshal(&greetv1.GreetRequest{Name: name})
	if err != nil {
		tb.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	body := base64.StdEncoding.EncodeToString(append(frame, msg...))
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, baseURL+"/greet.v1.GreetService/Greet", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web-text")
	req.Header.Set("Accept", "application/grpc-web-text")
	req.Header.Set("X-Grpc-Web", "1")
	res, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("HTTP %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc-web-text") {
		tb.Errorf("Content-Type %q", ct)
	}
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	status := readTextTrailers(tb, raw)
	trailersOnly := status == nil
	if trailersOnly {
		// Trailers-only: grpc-web JS reads the status from the headers,
		// which it sees only when they are exposed (or same-origin).
		status = map[string]string{}
		for _, k := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
			if v := res.Header.Get(k); v != "" {
				status[strings.ToLower(k)] = v
			}
		}
	}
	code, err := strconv.Atoi(status["grpc-status"])
	if err != nil {
		tb.Fatalf("grpc-status %q (body %q, headers %v)", status["grpc-status"], raw, res.Header)
	}
	out := shapeError{code: connect.Code(code), message: wire.PercentDecode(status["grpc-message"]), header: res.Header, trailersOnly: trailersOnly}
	if bin := status["grpc-status-details-bin"]; bin != "" {
		b, err := wire.DecodeBinaryHeader(bin)
		if err != nil {
			tb.Fatalf("grpc-status-details-bin %q: %v", bin, err)
		}
		var st spb.Status
		if err := proto.Unmarshal(b, &st); err != nil {
			tb.Fatal(err)
		}
		for _, a := range st.GetDetails() {
			m, err := a.UnmarshalNew()
			if err != nil {
				tb.Fatal(err)
			}
			out.details = append(out.details, m)
		}
	}
	return out
}

// readTextTrailers decodes a gRPC-Web text body (base64 chunks, each padded
// on its own) and returns its trailer frame's lines, nil for an empty body.
// A message frame before the trailers fails the test: every call here fails.
func readTextTrailers(tb testing.TB, body []byte) map[string]string {
	tb.Helper()
	var raw []byte
	for s := string(bytes.TrimSpace(body)); s != ""; {
		end := strings.IndexByte(s, '=')
		switch {
		case end < 0:
			end = len(s)
		default:
			for end < len(s) && s[end] == '=' {
				end++
			}
		}
		b, err := base64.StdEncoding.DecodeString(s[:end])
		if err != nil {
			tb.Fatalf("body %q is not base64: %v", body, err)
		}
		raw = append(raw, b...)
		s = s[end:]
	}
	if len(raw) == 0 {
		return nil
	}
	if len(raw) < 5 || raw[0] != 0x80 || int(binary.BigEndian.Uint32(raw[1:5])) != len(raw)-5 {
		tb.Fatalf("body %q is not one trailer frame", raw)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(raw[5:]), "\r\n"), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			tb.Fatalf("trailer line %q", line)
		}
		out[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return out
}
