package gateway_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
)

// hardGreetPrefix is the path prefix of the example service's procedures.
const hardGreetPrefix = "/greet.v1.GreetService/"

// hardArrivals counts what reached a grpc-go backend, through a stats handler:
// calls whose headers reached its transport (whether or not a handler ran)
// and request messages its handlers received. Health and reflection calls
// are not counted.
type hardArrivals struct {
	calls    atomic.Int64
	messages atomic.Int64
}

type hardMethodKey struct{}

func (a *hardArrivals) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, hardMethodKey{}, info.FullMethodName)
}

func (a *hardArrivals) HandleRPC(ctx context.Context, s stats.RPCStats) {
	method, _ := ctx.Value(hardMethodKey{}).(string)
	if !strings.HasPrefix(method, hardGreetPrefix) || s.IsClient() {
		return
	}
	switch s.(type) {
	case *stats.InHeader:
		a.calls.Add(1)
	case *stats.InPayload:
		a.messages.Add(1)
	}
}

func (a *hardArrivals) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (a *hardArrivals) HandleConn(context.Context, stats.ConnStats)                       {}

// option returns the grpc.ServerOption that installs the counter.
func (a *hardArrivals) option() grpc.ServerOption { return grpc.StatsHandler(a) }

// snapshot returns both counts.
func (a *hardArrivals) snapshot() (calls, messages int64) { return a.calls.Load(), a.messages.Load() }

// hardFilesOption makes the gateway use the greet descriptors from a file, so it
// never asks reflection and every call the backend sees is a test's.
func hardFilesOption(tb testing.TB) gatewayOption {
	tb.Helper()
	files := hardGreetFiles(tb)
	return func(c *gateway.Config) { c.Files = files }
}

// hardGreetFiles loads the greet descriptors through a descriptor file.
func hardGreetFiles(tb testing.TB) *protoregistry.Files {
	tb.Helper()
	files, err := gateway.LoadDescriptorFile(writeDescriptorFile(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

func hardDiscardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// hardResponse is what a hand-made request got back.
type hardResponse struct {
	status int
	header http.Header
	body   []byte
}

// hardPost sends body to gwURL+path with the given Content-Type (and the
// test origin), over HTTP/1.1, and reads the whole answer.
func hardPost(tb testing.TB, gwURL, path, contentType string, body []byte, extra http.Header) hardResponse {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, gwURL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return hardDo(tb, req)
}

func hardDo(tb testing.TB, req *http.Request) hardResponse {
	tb.Helper()
	res, err := httpClient(tb, false).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	return hardResponse{status: res.StatusCode, header: res.Header, body: readAll(tb, res.Body)}
}

// hardGRPCWebStatus parses a gRPC-Web response body (binary, or text when text)
// and returns its message frames and the trailers of its final frame,
// failing when the body is not well-formed gRPC-Web.
func hardGRPCWebStatus(tb testing.TB, body []byte, text bool) (messages int, trailers map[string]string) {
	tb.Helper()
	if text {
		body = decodeTextBody(tb, string(body))
	}
	frames := parseFrames(tb, body)
	if len(frames) == 0 {
		tb.Fatal("empty gRPC-Web body: no trailers frame")
	}
	last := frames[len(frames)-1]
	if last.flags != 0x80 {
		tb.Fatalf("last frame flags %#x, want 0x80 (trailers)", last.flags)
	}
	for i, f := range frames[:len(frames)-1] {
		if f.flags&0x80 != 0 {
			tb.Fatalf("frame %d of %d is a trailers frame", i, len(frames))
		}
	}
	return len(frames) - 1, trailerLines(tb, last.payload)
}

// grpcWebCode returns the grpc-status of a gRPC-Web answer in either shape
// the protocol allows: trailers-only (the status in the headers, no body),
// which the gateway writes for its own errors, or a body ending in a
// trailers frame.
func grpcWebCode(tb testing.TB, header http.Header, body []byte, text bool) string {
	tb.Helper()
	if len(body) == 0 {
		code := header.Get("Grpc-Status")
		if code == "" {
			tb.Fatal("gRPC-Web answer with no body and no grpc-status header")
		}
		return code
	}
	_, tr := hardGRPCWebStatus(tb, body, text)
	return tr["grpc-status"]
}
