package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// The raw calls use plain net/http, as a browser's fetch would, to see what
// connect-go hides: the HTTP status, every header, the exact body. Each
// turns a well-formed error into a wire *connect.Error carrying the response
// headers (so that it is judged like a connect-go failure), a transport
// failure into a non-wire one, and anything malformed into callResult.bad.

const (
	pathGreet       = "/greet.v1.GreetService/Greet"
	pathGreetStream = "/greet.v1.GreetService/GreetStream"
)

// Envelope flags.
const (
	flagEndStream = 0x02 // Connect streaming: the end-of-stream message
	flagTrailer   = 0x80 // gRPC-Web: the trailers frame
)

type envelope struct {
	flags byte
	data  []byte
}

func frame(flags byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

func parseEnvelopes(b []byte) ([]envelope, error) {
	var out []envelope
	for len(b) > 0 {
		if len(b) < 5 {
			return out, fmt.Errorf("%d bytes after the last envelope, want a 5-byte prefix", len(b))
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if uint64(len(b)-5) < uint64(n) {
			return out, fmt.Errorf("envelope of %d bytes cut after %d", n, len(b)-5)
		}
		out = append(out, envelope{flags: b[0], data: b[5 : 5+n]})
		b = b[5+n:]
	}
	return out, nil
}

// decodeGRPCWebText decodes a gRPC-Web text body: base64 chunks, each
// padded on its own, one after the other.
func decodeGRPCWebText(s string) ([]byte, error) {
	var out []byte
	s = strings.TrimSpace(s)
	for len(s) > 0 {
		if len(s) < 4 {
			return nil, fmt.Errorf("base64 body ends with %d stray characters", len(s))
		}
		b, err := base64.StdEncoding.DecodeString(s[:4])
		if err != nil {
			return nil, fmt.Errorf("base64 body: %w", err)
		}
		out = append(out, b...)
		s = s[4:]
	}
	return out, nil
}

// parseTrailerBlock reads "name: value\r\n" lines.
func parseTrailerBlock(b []byte) (http.Header, error) {
	h := http.Header{}
	for line := range strings.SplitSeq(string(b), "\r\n") {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("trailer line %q has no colon", line)
		}
		if name != strings.ToLower(name) {
			return nil, fmt.Errorf("trailer name %q is not lowercase", name)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

// grpcStatus turns grpc-status and grpc-message into nil or a wire error
// carrying header; ok is false when there is no valid grpc-status.
func grpcStatus(status, message string, header http.Header) (err error, ok bool) {
	if status == "" {
		return nil, false
	}
	code, perr := strconv.ParseUint(status, 10, 32)
	if perr != nil || code > 16 {
		return nil, false
	}
	if code == 0 {
		return nil, true
	}
	ce := connect.NewWireError(connect.Code(code), errors.New(decodeGRPCMessage(message)))
	for k, v := range header {
		ce.Meta()[k] = v
	}
	return ce, true
}

// decodeGRPCMessage undoes grpc-message's percent-encoding.
func decodeGRPCMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// post sends body and reads the whole answer. A transport failure comes
// back as a non-wire error (Canceled or DeadlineExceeded when ctx ended).
// When sent is not nil, it receives the moment the request was written: a
// new loopback connection may take a second more when its SYN is
// retransmitted, and the gateway cannot end a call it has not seen.
func post(ctx context.Context, hc *http.Client, url string, header http.Header, body []byte, sent *time.Time) (*http.Response, []byte, error) {
	if sent != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { *sent = time.Now() },
		})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header = header
	res, err := hc.Do(req)
	if err != nil {
		return nil, nil, transportError(ctx, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return res, nil, transportError(ctx, err)
	}
	return res, b, nil
}

func transportError(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("transport: %w", err))
}

// grpcTimeout formats d as a Grpc-Timeout value.
func grpcTimeout(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "m"
}

func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return 0
}

// rawGRPCWebText calls Greet as grpc-web's JavaScript client does by
// default: gRPC-Web text, base64 over HTTP/1.1.
func rawGRPCWebText(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
	name := randomName(rng, unarySize(rng, false))
	msg, _ := proto.Marshal(&greetv1.GreetRequest{Name: name})
	h := http.Header{
		"Content-Type": {"application/grpc-web-text"},
		"Accept":       {"application/grpc-web-text"},
		"X-Grpc-Web":   {"1"},
		"X-User-Agent": {"corsgate-soak"},
		"Origin":       {origin},
		"Grpc-Timeout": {grpcTimeout(remaining(ctx))},
	}
	res, body, err := post(ctx, c.h1, c.base+pathGreet, h, []byte(base64.StdEncoding.EncodeToString(frame(0, msg))), nil)
	if err != nil {
		return callResult{err: err}
	}
	r := callResult{header: res.Header}
	if res.StatusCode != http.StatusOK {
		r.bad = fmt.Sprintf("HTTP %d for gRPC-Web text, want 200", res.StatusCode)
		return r
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc-web-text") {
		r.bad = fmt.Sprintf("Content-Type %q, want application/grpc-web-text", ct)
		return r
	}
	raw, err := decodeGRPCWebText(string(body))
	if err != nil {
		r.bad = err.Error()
		return r
	}
	data, trailer, bad := splitGRPCWeb(raw, res.Header)
	if bad != "" {
		r.bad = bad
		return r
	}
	status, ok := grpcStatus(trailer.Get("Grpc-Status"), trailer.Get("Grpc-Message"), res.Header)
	switch {
	case !ok:
		r.bad = fmt.Sprintf("no valid grpc-status (trailer %v, headers %v)", trailer, res.Header)
	case status != nil:
		r.err = status
	case len(data) != 1:
		r.bad = fmt.Sprintf("%d messages in a unary answer", len(data))
	default:
		var m greetv1.GreetResponse
		if err := proto.Unmarshal(data[0], &m); err != nil {
			r.bad = fmt.Sprintf("answer: %v", err)
		} else if got, want := m.GetGreeting(), greeting(name); got != want {
			r.bad = fmt.Sprintf("greeting %q, want %q", clip(got), clip(want))
		}
	}
	return r
}

// splitGRPCWeb splits a gRPC-Web body into its messages and its trailers:
// the trailer frame, which must be last, or the headers of a trailers-only
// answer.
func splitGRPCWeb(raw []byte, header http.Header) (data [][]byte, trailer http.Header, bad string) {
	envs, err := parseEnvelopes(raw)
	if err != nil {
		return nil, nil, err.Error()
	}
	for i, e := range envs {
		switch {
		case e.flags&flagTrailer != 0:
			if i != len(envs)-1 {
				return nil, nil, "trailer frame before the end of the body"
			}
			t, err := parseTrailerBlock(e.data)
			if err != nil {
				return nil, nil, err.Error()
			}
			return data, t, ""
		case e.flags != 0:
			return nil, nil, fmt.Sprintf("frame flags %#x", e.flags)
		default:
			data = append(data, e.data)
		}
	}
	if len(envs) == 0 && header.Get("Grpc-Status") != "" {
		return nil, header, "" // trailers-only
	}
	return nil, nil, "body ends without a trailer frame"
}

// connectHTTPStatus is the HTTP status Connect gives each code the soak may
// meet in a unary answer.
var connectHTTPStatus = map[connect.Code]int{
	connect.CodeCanceled:          499,
	connect.CodeUnknown:           500,
	connect.CodeInvalidArgument:   400,
	connect.CodeDeadlineExceeded:  504,
	connect.CodePermissionDenied:  403,
	connect.CodeResourceExhausted: 429,
	connect.CodeInternal:          500,
	connect.CodeUnavailable:       503,
	connect.CodeUnimplemented:     501,
}

type connectWireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// connectError reads a Connect error body into r: a wire error carrying
// header, or r.bad when the body is not a Connect error.
func connectError(r *callResult, body []byte, header http.Header) {
	var we connectWireError
	if err := json.Unmarshal(body, &we); err != nil {
		r.bad = fmt.Sprintf("error body %q is not Connect's JSON: %v", clip(string(body)), err)
		return
	}
	var code connect.Code
	if err := code.UnmarshalText([]byte(we.Code)); err != nil {
		r.bad = fmt.Sprintf("error code %q: %v", we.Code, err)
		return
	}
	ce := connect.NewWireError(code, errors.New(we.Message))
	for k, v := range header {
		ce.Meta()[k] = v
	}
	r.err = ce
}

// rawConnectJSON calls Greet in Connect's unary protocol with JSON, as
// connect-web does.
func rawConnectJSON(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
	name := randomName(rng, unarySize(rng, false))
	body, _ := json.Marshal(map[string]string{"name": name})
	h := http.Header{
		"Content-Type":             {"application/json"},
		"Connect-Protocol-Version": {"1"},
		"Connect-Timeout-Ms":       {strconv.FormatInt(remaining(ctx).Milliseconds(), 10)},
		"Origin":                   {origin},
	}
	res, b, err := post(ctx, c.h1, c.base+pathGreet, h, body, nil)
	if err != nil {
		return callResult{err: err}
	}
	r := callResult{header: res.Header}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		r.bad = fmt.Sprintf("HTTP %d with Content-Type %q, want application/json", res.StatusCode, ct)
		return r
	}
	if res.StatusCode != http.StatusOK {
		connectError(&r, b, res.Header)
		if r.bad != "" {
			r.bad = fmt.Sprintf("HTTP %d: %s", res.StatusCode, r.bad)
		} else if want, ok := connectHTTPStatus[connect.CodeOf(r.err)]; ok && want != res.StatusCode {
			r.bad = fmt.Sprintf("HTTP %d for %s, want %d", res.StatusCode, connect.CodeOf(r.err), want)
		}
		return r
	}
	var m struct {
		Greeting string `json:"greeting"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		r.bad = fmt.Sprintf("answer %q: %v", clip(string(b)), err)
	} else if want := greeting(name); m.Greeting != want {
		r.bad = fmt.Sprintf("greeting %q, want %q", clip(m.Greeting), clip(want))
	}
	return r
}

// preflightCase is a preflight a browser would send for a procedure;
// barred marks the procedure browsers may never call.
type preflightCase struct {
	path   string
	acrh   string
	barred bool
}

var preflights = []preflightCase{
	{path: pathGreet, acrh: "content-type,x-grpc-web,x-user-agent"},
	{path: pathGreet, acrh: "connect-protocol-version,connect-timeout-ms,content-type"},
	{path: pathGreetStream, acrh: "content-type,grpc-timeout,x-grpc-web"},
	{path: "/greet.v1.GreetService/Chat", acrh: "connect-protocol-version,content-type"},
	{path: "/greet.v1.GreetService/ResetGreetings", acrh: "content-type,x-grpc-web", barred: true},
}

// rawPreflight sends a browser's preflight. An allowed origin must get 2xx
// with its origin echoed, POST and every requested header allowed; a
// disallowed origin or a barred procedure must get no CORS headers. The
// answer comes from the descriptors: the backend's state must not matter.
func rawPreflight(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
	pc := preflights[rng.IntN(len(preflights))]
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, c.base+pc.path, nil)
	if err != nil {
		return callResult{bad: err.Error()}
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", pc.acrh)
	client := c.h1
	if rng.IntN(2) == 0 {
		client = c.h2c
	}
	res, err := client.Do(req)
	if err != nil {
		return callResult{err: transportError(ctx, err)}
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	r := callResult{header: res.Header}
	acao := res.Header.Get("Access-Control-Allow-Origin")
	if origin != allowedOrigin || pc.barred {
		// A refusal is any status without CORS headers.
		if acao == "" {
			r.outcome = outcomeRefused
		} else {
			r.bad = fmt.Sprintf("preflight for %s from %s allowed (ACAO %q)", pc.path, origin, acao)
		}
		return r
	}
	switch {
	case res.StatusCode/100 != 2:
		r.bad = fmt.Sprintf("preflight for %s: HTTP %d, want 2xx", pc.path, res.StatusCode)
	case acao != origin:
		r.bad = fmt.Sprintf("preflight for %s: ACAO %q, want %q", pc.path, acao, origin)
	case !listHas(res.Header.Values("Access-Control-Allow-Methods"), http.MethodPost):
		r.bad = fmt.Sprintf("preflight for %s: Allow-Methods %q lacks POST", pc.path, res.Header.Values("Access-Control-Allow-Methods"))
	default:
		for name := range strings.SplitSeq(pc.acrh, ",") {
			if !listHas(res.Header.Values("Access-Control-Allow-Headers"), name) {
				r.bad = fmt.Sprintf("preflight for %s: Allow-Headers %q lacks %s", pc.path, res.Header.Values("Access-Control-Allow-Headers"), name)
				break
			}
		}
	}
	return r
}

// listHas reports whether a comma-separated header holds v, ignoring case.
func listHas(values []string, v string) bool {
	for _, line := range values {
		for item := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(item), v) || strings.TrimSpace(item) == "*" {
				return true
			}
		}
	}
	return false
}

// probeRequest is a server stream that would run 20 s: 1000 greetings 20 ms
// apart. A probe announces a deadline only in a header, so the gateway (and
// the backend behind it) must end the call.
var probeRequest, _ = proto.Marshal(&greetv1.GreetStreamRequest{Name: "probe", Count: 1000, IntervalMs: 20})

// probeGRPCWeb sends a gRPC-Web server stream with Grpc-Timeout.
func probeGRPCWeb(ctx context.Context, c *clients, origin string, _ *rand.Rand) callResult {
	h := http.Header{
		"Content-Type": {"application/grpc-web+proto"},
		"X-Grpc-Web":   {"1"},
		"Origin":       {origin},
		"Grpc-Timeout": {grpcTimeout(probeDeadline(ctx))},
	}
	var sent time.Time
	res, body, err := post(ctx, c.h1, c.base+pathGreetStream, h, frame(0, probeRequest), &sent)
	if err != nil {
		return probeTransport(ctx, err)
	}
	r := callResult{header: res.Header, sent: sent}
	if res.StatusCode != http.StatusOK {
		r.bad = fmt.Sprintf("HTTP %d for gRPC-Web, want 200", res.StatusCode)
		return r
	}
	data, trailer, bad := splitGRPCWeb(body, res.Header)
	if bad != "" {
		r.bad = bad
		return r
	}
	if bad := checkProbeMessages(data, func(b []byte) (*greetv1.GreetStreamResponse, error) {
		var m greetv1.GreetStreamResponse
		return &m, proto.Unmarshal(b, &m)
	}); bad != "" {
		r.bad = bad
		return r
	}
	status, ok := grpcStatus(trailer.Get("Grpc-Status"), trailer.Get("Grpc-Message"), res.Header)
	switch {
	case !ok:
		r.bad = fmt.Sprintf("no valid grpc-status (trailer %v)", trailer)
	case status == nil:
		r.bad = "a 20 s stream completed within its deadline"
	default:
		r.err = status
	}
	return r
}

// probeConnect sends a Connect server stream with Connect-Timeout-Ms.
func probeConnect(ctx context.Context, c *clients, origin string, _ *rand.Rand) callResult {
	h := http.Header{
		"Content-Type":             {"application/connect+proto"},
		"Connect-Protocol-Version": {"1"},
		"Origin":                   {origin},
		"Connect-Timeout-Ms":       {strconv.FormatInt(probeDeadline(ctx).Milliseconds(), 10)},
	}
	var sent time.Time
	res, body, err := post(ctx, c.h1, c.base+pathGreetStream, h, frame(0, probeRequest), &sent)
	if err != nil {
		return probeTransport(ctx, err)
	}
	r := callResult{header: res.Header, sent: sent}
	if res.StatusCode != http.StatusOK {
		// Connect may refuse a stream before it starts with a unary-style error.
		connectError(&r, body, res.Header)
		if r.bad != "" {
			r.bad = fmt.Sprintf("HTTP %d: %s", res.StatusCode, r.bad)
		}
		return r
	}
	envs, err := parseEnvelopes(body)
	if err != nil {
		r.bad = err.Error()
		return r
	}
	if len(envs) == 0 || envs[len(envs)-1].flags != flagEndStream {
		r.bad = "stream ends without an end-of-stream message"
		return r
	}
	var data [][]byte
	for _, e := range envs[:len(envs)-1] {
		if e.flags != 0 {
			r.bad = fmt.Sprintf("message flags %#x before the end of the stream", e.flags)
			return r
		}
		data = append(data, e.data)
	}
	if bad := checkProbeMessages(data, func(b []byte) (*greetv1.GreetStreamResponse, error) {
		var m greetv1.GreetStreamResponse
		return &m, proto.Unmarshal(b, &m)
	}); bad != "" {
		r.bad = bad
		return r
	}
	var end struct {
		Error *connectWireError `json:"error"`
	}
	if err := json.Unmarshal(envs[len(envs)-1].data, &end); err != nil {
		r.bad = fmt.Sprintf("end-of-stream message: %v", err)
		return r
	}
	if end.Error == nil {
		r.bad = "a 20 s stream completed within its deadline"
		return r
	}
	b, _ := json.Marshal(end.Error)
	connectError(&r, b, res.Header)
	return r
}

// probeDeadline is the deadline a probe announces: its kind's deadline,
// which the worker put in the context as a value.
func probeDeadline(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(announcedKey{}).(time.Duration); ok {
		return d
	}
	return time.Second
}

type announcedKey struct{}

// probeTransport judges a probe that got no complete answer: when the
// client's own, longer timeout ended it, the gateway held the call too long.
func probeTransport(ctx context.Context, err error) callResult {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return callResult{bad: "the gateway did not end the call at the announced deadline; the client's own timeout did"}
	}
	return callResult{err: err}
}

func checkProbeMessages(data [][]byte, decode func([]byte) (*greetv1.GreetStreamResponse, error)) string {
	for i, d := range data {
		m, err := decode(d)
		if err != nil {
			return fmt.Sprintf("message %d: %v", i+1, err)
		}
		if m.GetIndex() != int32(i+1) || m.GetGreeting() != greeting("probe") {
			return fmt.Sprintf("message %d: index %d, greeting %q", i+1, m.GetIndex(), m.GetGreeting())
		}
	}
	return ""
}
