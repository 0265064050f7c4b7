package gateway_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
)

// greetPrefix is the path prefix of the example service's procedures.
const greetPrefix = "/greet.v1.GreetService/"

// arrivals counts what reached a grpc-go backend, through a stats handler:
// calls whose headers reached its transport (whether or not a handler ran)
// and request messages its handlers received. Health and reflection calls
// are not counted.
type arrivals struct {
	calls    atomic.Int64
	messages atomic.Int64
}

type methodKey struct{}

func (a *arrivals) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, methodKey{}, info.FullMethodName)
}

func (a *arrivals) HandleRPC(ctx context.Context, s stats.RPCStats) {
	method, _ := ctx.Value(methodKey{}).(string)
	if !strings.HasPrefix(method, greetPrefix) || s.IsClient() {
		return
	}
	switch s.(type) {
	case *stats.InHeader:
		a.calls.Add(1)
	case *stats.InPayload:
		a.messages.Add(1)
	}
}

func (a *arrivals) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (a *arrivals) HandleConn(context.Context, stats.ConnStats)                       {}

// option returns the grpc.ServerOption that installs the counter.
func (a *arrivals) option() grpc.ServerOption { return grpc.StatsHandler(a) }

// snapshot returns both counts.
func (a *arrivals) snapshot() (calls, messages int64) { return a.calls.Load(), a.messages.Load() }

// filesOption makes the gateway use the greet descriptors from a file, so it
// never asks reflection and every call the backend sees is a test's.
func filesOption(tb testing.TB) gatewayOption {
	tb.Helper()
	files := loadGreetFiles(tb)
	return func(c *gateway.Config) { c.Files = files }
}

// loadGreetFiles loads the greet descriptors through a descriptor file.
func loadGreetFiles(tb testing.TB) *protoregistry.Files {
	tb.Helper()
	files, err := gateway.LoadDescriptorFile(writeDescriptorFile(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// rawResponse is what a hand-made request got back.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// rawPost sends body to gwURL+path with the given Content-Type (and the
// test origin), over HTTP/1.1, and reads the whole answer.
func rawPost(tb testing.TB, gwURL, path, contentType string, body []byte, extra http.Header) rawResponse {
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
	return rawDo(tb, req)
}

func rawDo(tb testing.TB, req *http.Request) rawResponse {
	tb.Helper()
	res, err := httpClient(tb, false).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	return rawResponse{status: res.StatusCode, header: res.Header, body: readAll(tb, res.Body)}
}

// grpcWebStatus parses a gRPC-Web response body (binary, or text when text)
// and returns its message frames and the trailers of its final frame,
// failing when the body is not well-formed gRPC-Web.
func grpcWebStatus(tb testing.TB, body []byte, text bool) (messages int, trailers map[string]string) {
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

// syncBuf is a bytes.Buffer safe for concurrent writes, for logs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
