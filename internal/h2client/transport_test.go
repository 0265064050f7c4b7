package h2client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/testutil"
)

// The tests of Transport call a real grpc-go backend on loopback through
// the transport alone, without the gateway's protocol code.

// newTestTransport returns a transport for cfg, closed at the test's end.
func newTestTransport(tb testing.TB, cfg Config) *Transport {
	tb.Helper()
	tr, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tr.Close)
	return tr
}

func h2Backend(tb testing.TB, opts ...grpc.ServerOption) string {
	tb.Helper()
	return testutil.StartGreetd(tb, nil, opts...)
}

func h2Frame(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	copy(out[5:], b)
	return out
}

func h2Request(ctx context.Context, addr, method string, body io.ReadCloser) *http.Request {
	req := &http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Scheme: "http", Host: addr, Path: "/greet.v1.GreetService/" + method},
		Host:       addr,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}},
		Body:       body,
	}
	return req.WithContext(ctx)
}

// h2Messages reads a gRPC response to its end and returns its messages and
// grpc-status.
func h2Messages(tb testing.TB, resp *http.Response) (msgs [][]byte, status string) {
	tb.Helper()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("reading the body: %v", err)
	}
	for len(data) >= 5 {
		n := int(binary.BigEndian.Uint32(data[1:5]))
		if len(data) < 5+n {
			tb.Fatalf("body ends inside a message")
		}
		msgs = append(msgs, data[5:5+n])
		data = data[5+n:]
	}
	status = resp.Trailer.Get("Grpc-Status")
	if status == "" {
		status = resp.Header.Get("Grpc-Status")
	}
	return msgs, status
}

func greeting(tb testing.TB, b []byte) string {
	tb.Helper()
	var res greetv1.GreetResponse
	if err := proto.Unmarshal(b, &res); err != nil {
		tb.Fatal(err)
	}
	return res.GetGreeting()
}

// TestH2LargeMessages sends and receives messages many times the HTTP/2
// windows, so both directions go through flow control: a body held whole
// and a body that streams in small pieces.
func TestH2LargeMessages(t *testing.T) {
	t.Parallel()
	addr := h2Backend(t)
	tr := newTestTransport(t, Config{Authority: addr})
	name := strings.Repeat("w", 3<<20)
	frame := h2Frame(t, &greetv1.GreetRequest{Name: name})
	tests := []struct {
		name string
		body func() io.ReadCloser
	}{
		{name: "held whole", body: func() io.ReadCloser { return NewBytesBody(frame) }},
		{name: "streamed", body: func() io.ReadCloser {
			pr, pw := io.Pipe()
			go func() {
				for rest := frame; len(rest) > 0; {
					n := min(len(rest), 7000)
					if _, err := pw.Write(rest[:n]); err != nil {
						return
					}
					rest = rest[n:]
				}
				_ = pw.Close()
			}()
			return pr
		}},
	}
	for _, tt := range tests {
		// whole: the response is handed over at its end, or (here) once a
		// part of the stream window is buffered; waiting for the end would
		// wait forever, as the backend stops at the window.
		for _, whole := range []bool{false, true} {
			t.Run(tt.name+"/whole="+strconv.FormatBool(whole), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				resp, err := tr.Call(ctx, h2Request(ctx, addr, "Greet", tt.body()), whole)
				if err != nil {
					t.Fatal(err)
				}
				msgs, status := h2Messages(t, resp)
				if status != "0" || len(msgs) != 1 {
					t.Fatalf("status %q, %d messages; want 0 and 1", status, len(msgs))
				}
				if got := greeting(t, msgs[0]); got != "Hello, "+name+"!" {
					t.Errorf("greeting of %d bytes, want %d", len(got), len(name)+8)
				}
			})
		}
	}
}

// TestH2StreamLimit runs more concurrent calls than the backend's stream
// limit: the transport must open connections as the limit requires and
// retry the streams the backend refused before its SETTINGS arrived.
func TestH2StreamLimit(t *testing.T) {
	t.Parallel()
	addr := h2Backend(t, grpc.MaxConcurrentStreams(1))
	tr := newTestTransport(t, Config{Authority: addr})
	frame := h2Frame(t, &greetv1.GreetStreamRequest{Name: "x", Count: 3, IntervalMs: 20})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := tr.RoundTrip(h2Request(ctx, addr, "GreetStream", NewBytesBody(frame)))
			if err != nil {
				t.Error(err)
				failed.Add(1)
				return
			}
			if msgs, status := h2Messages(t, resp); status != "0" || len(msgs) != 3 {
				t.Errorf("status %q, %d messages; want 0 and 3", status, len(msgs))
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	tr.mu.Lock()
	conns := len(tr.conns)
	tr.mu.Unlock()
	if failed.Load() == 0 && conns < 2 {
		t.Errorf("%d connection(s) for 16 concurrent calls with a limit of 1 stream each", conns)
	}
}

// TestH2PingClosesSilentConnection freezes the backend connection (a proxy
// stops forwarding, nothing is closed): the transport must ping, give up,
// and fail the call in flight instead of waiting forever.
func TestH2PingClosesSilentConnection(t *testing.T) {
	t.Parallel()
	backend := h2Backend(t)
	proxy := newFreezingProxy(t, backend)
	tr := newTestTransport(t, Config{Authority: proxy.addr, PingAfter: 300 * time.Millisecond, PingTimeout: 600 * time.Millisecond})
	frame := h2Frame(t, &greetv1.GreetStreamRequest{Name: "x", Count: 100, IntervalMs: 10000})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := tr.RoundTrip(h2Request(ctx, proxy.addr, "GreetStream", NewBytesBody(frame)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatalf("first message: %v", err)
	}
	proxy.freeze()
	start := time.Now()
	for err == nil {
		_, err = resp.Body.Read(buf)
	}
	if !strings.Contains(err.Error(), "ping") || errors.Is(err, io.EOF) {
		t.Errorf("read error %v, want the unanswered ping", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the silent connection was noticed after %v", d)
	}
}

// freezingProxy forwards TCP to a backend until freeze, after which it
// forwards nothing and closes nothing.
type freezingProxy struct {
	addr   string
	frozen chan struct{}
	once   sync.Once
}

func newFreezingProxy(tb testing.TB, backend string) *freezingProxy {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &freezingProxy{addr: lis.Addr().String(), frozen: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	tb.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			go p.pipe(c, b)
			go p.pipe(b, c)
		}
	}()
	return p
}

func (p *freezingProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

func (p *freezingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			<-make(chan struct{}) // hold on, forward nothing
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// lockedBody is a request body whose Close waits for a Read under way, as
// an HTTP/1.1 server's request body does; Read blocks until released.
type lockedBody struct {
	mu      sync.Mutex
	release chan struct{}
	once    sync.Once
}

func (b *lockedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	<-b.release
	return 0, io.EOF
}

func (b *lockedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return nil
}

func (b *lockedBody) free() { b.once.Do(func() { close(b.release) }) }

// TestH2EarlyAnswerDoesNotStallConnection: the backend ends a call (here
// at its deadline) while the request body still streams, and closing that
// body waits for a read that only the client could end. The connection's
// other calls must go on meanwhile: the close must not run on the read
// loop.
func TestH2EarlyAnswerDoesNotStallConnection(t *testing.T) {
	t.Parallel()
	addr := h2Backend(t)
	tr := newTestTransport(t, Config{Authority: addr})
	body := &lockedBody{release: make(chan struct{})}
	defer body.free()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := h2Request(ctx, addr, "Chat", body)
	req.Header.Set("Grpc-Timeout", "100m")
	done := make(chan error, 1)
	go func() {
		// The backend ends the call with DEADLINE_EXCEEDED, or resets it
		// (grpc-go does either): both are fine here.
		resp, err := tr.RoundTrip(req)
		if err == nil {
			if _, status := h2Messages(t, resp); status != "4" {
				err = errors.New("status " + status + ", want 4 (deadline exceeded)")
			}
		} else if !strings.Contains(err.Error(), "reset") {
			err = errors.New("call error " + err.Error() + ", want a reset or DEADLINE_EXCEEDED")
		} else {
			err = nil
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the backend's deadline passes
	frame := h2Frame(t, &greetv1.GreetRequest{Name: "other"})
	uctx, ucancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer ucancel()
	resp, err := tr.RoundTrip(h2Request(uctx, addr, "Greet", NewBytesBody(frame)))
	if err != nil {
		t.Fatalf("a call beside the stalled body: %v", err)
	}
	if msgs, status := h2Messages(t, resp); status != "0" || len(msgs) != 1 {
		t.Fatalf("a call beside the stalled body: status %q, %d messages", status, len(msgs))
	}
	body.free()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// h2ResponseSeed is a backend's answer to stream 1: response headers, one
// message and trailers, as frames.
func h2ResponseSeed(tb testing.TB, endHeaders bool) []byte {
	tb.Helper()
	var out, block bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	enc := hpack.NewEncoder(&block)
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: endHeaders})
	_ = fr.WriteData(1, false, h2Frame(tb, &greetv1.GreetResponse{Greeting: "Hello"}))
	block.Reset()
	_ = enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "0"})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: true})
	_ = fr.WriteWindowUpdate(0, 1<<20)
	_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	_ = fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	return out.Bytes()
}

// h2FakeBackendCall makes one call through a transport whose backend
// answers with a valid SETTINGS frame and then data. It returns the body
// read to its end and the trailers, or the call's error.
func h2FakeBackendCall(tb testing.TB, data []byte, whole bool, settings ...http2.Setting) (body []byte, trailer http.Header, err error) {
	client, server := net.Pipe()
	tr, err := New(Config{Authority: "backend:80", DialContext: func(context.Context, string, string) (net.Conn, error) { return client, nil }})
	if err != nil {
		tb.Fatal(err)
	}
	served, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		// SETTINGS at once (the transport waits for them), the data once
		// the call's HEADERS arrived.
		headers := make(chan struct{})
		go func() {
			defer func() { _, _ = io.Copy(io.Discard, server) }()
			preface := make([]byte, len(http2.ClientPreface))
			if _, err := io.ReadFull(server, preface); err != nil {
				return
			}
			fr := http2.NewFramer(nil, server)
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					return
				}
				if _, ok := f.(*http2.HeadersFrame); ok {
					close(headers)
					return
				}
			}
		}()
		if http2.NewFramer(server, nil).WriteSettings(settings...) != nil {
			return
		}
		select {
		case <-headers:
			_, _ = server.Write(data)
		case <-quit:
		}
	}()
	defer func() {
		close(quit)
		tr.Close()
		_ = server.Close()
		<-served
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	frame := h2Frame(tb, &greetv1.GreetRequest{Name: "fuzz"})
	resp, err := tr.Call(ctx, h2Request(ctx, "backend", "Greet", NewBytesBody(frame)), whole)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return body, resp.Trailer, err
}

// TestH2FakeBackend checks the fuzz harness below: a well-formed answer
// comes through whole.
func TestH2FakeBackend(t *testing.T) {
	for _, whole := range []bool{false, true} {
		body, trailer, err := h2FakeBackendCall(t, h2ResponseSeed(t, true), whole)
		if err != nil {
			t.Fatalf("whole=%v: %v", whole, err)
		}
		if len(body) < 5 || greeting(t, body[5:]) != "Hello" || trailer.Get("Grpc-Status") != "0" {
			t.Errorf("whole=%v: body %q, trailer %v", whole, body, trailer)
		}
	}
}

// TestH2BackendAllowsNoStreams: a backend whose SETTINGS allow no stream
// fails the call at once; dialing again would get the same answer forever.
func TestH2BackendAllowsNoStreams(t *testing.T) {
	start := time.Now()
	_, _, err := h2FakeBackendCall(t, nil, false, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 0})
	if err == nil || !strings.Contains(err.Error(), "no streams") {
		t.Errorf("err = %v, want the backend's refusal of every stream", err)
	}
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Errorf("took %v: the transport kept dialing until the deadline", d)
	}
}

// FuzzH2BackendFrames answers a call with arbitrary bytes after a valid
// SETTINGS frame: whatever a broken or hostile backend sends, the transport
// fails the call or ends its body, and never panics or hangs.
func FuzzH2BackendFrames(f *testing.F) {
	f.Add(h2ResponseSeed(f, true))
	f.Add(h2ResponseSeed(f, false))
	f.Add([]byte{0, 0, 4, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}) // DATA before HEADERS
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = h2FakeBackendCall(t, data, len(data)%2 == 0)
	})
}
