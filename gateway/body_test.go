package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
)

// bodyHeapBound is the most the heap may grow while the stalled calls of a
// memory test are open. The attacks these tests replay took the heap from
// 13 MiB to 800 MiB and more before the fix.
const bodyHeapBound = 256 << 20

// bodyEnv is a gateway in front of greetd that counts the requests its
// handler received, so that a test knows when the gateway has them all.
type bodyEnv struct {
	gwURL   string
	arrived atomic.Int64
}

func newBodyEnv(tb testing.TB, opts ...gatewayOption) *bodyEnv {
	tb.Helper()
	backend := startBackend(tb, nil)
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := gateway.Config{Backend: backend, Policy: policy, Logger: hardDiscardLogger(), Files: hardGreetFiles(tb)}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	e := &bodyEnv{}
	e.gwURL = serveHandler(tb, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.arrived.Add(1)
		g.ServeHTTP(w, r)
	}))
	return e
}

// waitArrived waits until the gateway's handler has received n requests.
func (e *bodyEnv) waitArrived(tb testing.TB, n int64) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.arrived.Load() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("the gateway received %d of %d requests", e.arrived.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the handlers reach their first read
}

// checkHeap fails the test as soon as the heap grew past bodyHeapBound
// since base, so that a regression stops before it takes the machine's
// memory, and returns the growth.
func checkHeap(tb testing.TB, base uint64, calls int) uint64 {
	tb.Helper()
	now := hardHeapInUse()
	grown := uint64(0)
	if now > base {
		grown = now - base
	}
	if grown > bodyHeapBound {
		tb.Fatalf("%d stalled calls grew the heap by %d MiB, more than the bound of %d MiB", calls, grown>>20, bodyHeapBound>>20)
	}
	return grown
}

// stalledH2Calls opens n HTTP/2 calls whose bodies send head and then
// nothing, checking the heap after each batch, as an attacker does: raw
// frames on a few connections, each with as many streams as the server
// allows (250), so that the heap measured is the gateway's, not a client's
// buffers. The connections close at the test's cleanup.
func stalledH2Calls(t *testing.T, e *bodyEnv, n int, path, contentType string, contentLength int64, head []byte) uint64 {
	t.Helper()
	const perConn = 250
	base := hardHeapInUse()
	var grown uint64
	for opened := 0; opened < n; {
		conn := dialGateway(t, e.gwURL)
		if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(conn, conn)
		if err := fr.WriteSettings(); err != nil {
			t.Fatal(err)
		}
		go func() { // read and drop the server's frames
			rd := http2.NewFramer(io.Discard, conn)
			for {
				if _, err := rd.ReadFrame(); err != nil {
					return
				}
			}
		}()
		var hbuf bytes.Buffer
		enc := hpack.NewEncoder(&hbuf)
		for i := 0; i < perConn && opened < n; i++ {
			hbuf.Reset()
			fields := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "gateway"}, {":path", path},
				{"content-type", contentType}, {"origin", testOrigin}}
			if contentLength >= 0 {
				fields = append(fields, [2]string{"content-length", strconv.FormatInt(contentLength, 10)})
			}
			for _, f := range fields {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			id := uint32(2*i + 1)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			if len(head) > 0 {
				if err := fr.WriteData(id, false, head); err != nil {
					t.Fatal(err)
				}
			}
			opened++
			if opened%100 == 0 || opened == n {
				e.waitArrived(t, int64(opened))
				grown = checkHeap(t, base, opened)
			}
		}
	}
	t.Logf("%d stalled HTTP/2 calls: heap grew by %.1f MiB (%.1f KiB a call)", n, float64(grown)/(1<<20), float64(grown)/1024/float64(n))
	return grown
}

// TestDeclaredContentLengthReservesNoMemory replays the attack of 1 000
// HTTP/2 streams that declare a 4 MiB Content-Length and send no body: the
// gateway used to allocate 4 MiB for each before reading a byte.
func TestDeclaredContentLengthReservesNoMemory(t *testing.T) {
	e := newBodyEnv(t, func(c *gateway.Config) { c.BodyTimeout = time.Minute })
	stalledH2Calls(t, e, 1000, hardGreetPrefix+"Greet", "application/grpc-web+proto", gateway.DefaultMaxMessageSize, nil)
}

// TestDeclaredFrameSizeReservesNoMemory replays the attack of 1 000 HTTP/2
// streams of gRPC-Web JSON to the client stream GreetMany that send the
// frame header 00 00 40 00 00 (a 4 MiB message) and no payload: the
// gateway used to grow a buffer to the declared size for each.
func TestDeclaredFrameSizeReservesNoMemory(t *testing.T) {
	e := newBodyEnv(t, func(c *gateway.Config) { c.BodyTimeout = time.Minute })
	stalledH2Calls(t, e, 1000, hardGreetPrefix+"GreetMany", "application/grpc-web+json", -1, []byte{0, 0, 0x40, 0, 0})
}

// stalledH1Request is the head of an HTTP/1.1 gRPC-Web Greet call whose
// body is contentLength bytes long.
func stalledH1Request(path string, contentLength int) string {
	return "POST " + path + " HTTP/1.1\r\nHost: gateway\r\nOrigin: " + testOrigin +
		"\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: " + strconv.Itoa(contentLength) + "\r\n\r\n"
}

func dialGateway(tb testing.TB, gwURL string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(gwURL, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestDeclaredContentLengthReservesNoMemoryHTTP1 replays the attack of
// HTTP/1.1 connections that send headers with a 4 MiB Content-Length and
// no body (200 of them took the heap from 13 MB to 811 MB).
func TestDeclaredContentLengthReservesNoMemoryHTTP1(t *testing.T) {
	const conns = 300
	e := newBodyEnv(t, func(c *gateway.Config) { c.BodyTimeout = time.Minute })
	base := hardHeapInUse()
	var grown uint64
	for opened := 0; opened < conns; {
		for range min(100, conns-opened) {
			conn := dialGateway(t, e.gwURL)
			if _, err := io.WriteString(conn, stalledH1Request(hardGreetPrefix+"Greet", gateway.DefaultMaxMessageSize)); err != nil {
				t.Fatal(err)
			}
			opened++
		}
		e.waitArrived(t, int64(opened))
		grown = checkHeap(t, base, opened)
	}
	t.Logf("%d stalled HTTP/1.1 calls: heap grew by %.1f MiB (%.1f KiB a call)", conns, float64(grown)/(1<<20), float64(grown)/1024/conns)
}

// readH1GRPCWebStatus reads one HTTP/1.1 gRPC-Web answer from br and
// returns its grpc-status.
func readH1GRPCWebStatus(tb testing.TB, br *bufio.Reader) string {
	tb.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("reading the answer: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("HTTP %d, want 200 with a gRPC-Web status", res.StatusCode)
	}
	return grpcWebCode(tb, res.Header, body, false)
}

// TestBodyWithoutProgressIsCut checks the body progress deadline: a client
// that stops sending in the middle of a message is answered
// DEADLINE_EXCEEDED in its protocol (and, on HTTP/1.1, its connection is
// closed), while a client stream may wait between messages as long as it
// likes. Before, nothing but ReadHeaderTimeout bounded a body, and such
// connections stayed open forever.
func TestBodyWithoutProgressIsCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newBodyEnv(t, func(c *gateway.Config) { c.BodyTimeout = timeout })

	t.Run("http1/unary", func(t *testing.T) {
		t.Parallel()
		conn := dialGateway(t, e.gwURL)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, stalledH1Request(hardGreetPrefix+"Greet", 100)+"\x00\x00\x00"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		if got := readH1GRPCWebStatus(t, br); got != "4" {
			t.Errorf("grpc-status %q, want 4 (DEADLINE_EXCEEDED)", got)
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("connection not closed after the cut body: %v", err)
		}
	})

	// h2Stalled sends head and then nothing over HTTP/2.
	h2Stalled := func(t *testing.T, path, contentType string, head []byte) *http.Response {
		t.Helper()
		pr, pw := io.Pipe()
		t.Cleanup(func() { _ = pw.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.gwURL+path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		go func() { _, _ = pw.Write(head) }()
		res, err := httpClient(t, true).Do(req)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}

	t.Run("h2/connect-unary", func(t *testing.T) {
		t.Parallel()
		res := h2Stalled(t, hardGreetPrefix+"Greet", "application/proto", []byte{0x0a})
		body := readAll(t, res.Body)
		if res.StatusCode != http.StatusGatewayTimeout || !bytes.Contains(body, []byte(`"deadline_exceeded"`)) {
			t.Errorf("HTTP %d %s, want 504 with a Connect deadline_exceeded error", res.StatusCode, body)
		}
	})

	t.Run("h2/grpcweb-client-stream", func(t *testing.T) {
		t.Parallel()
		// The header announces 10 bytes; 2 follow.
		res := h2Stalled(t, hardGreetPrefix+"GreetMany", "application/grpc-web+proto", []byte{0, 0, 0, 0, 10, 0x0a, 0x08})
		if code := grpcWebCode(t, res.Header, readAll(t, res.Body), false); code != "4" {
			t.Errorf("grpc-status %s, want 4 (DEADLINE_EXCEEDED)", code)
		}
	})

	t.Run("h2/idle-between-messages", func(t *testing.T) {
		t.Parallel()
		client := newGreetClient(t, e.gwURL, clientKind{h2: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream := client.GreetMany(ctx)
		for i := range 2 {
			if err := stream.Send(&greetv1.GreetManyRequest{Name: fmt.Sprint("n", i)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * timeout)
		}
		if _, err := stream.CloseAndReceive(); err != nil {
			t.Errorf("a client stream idle between messages was cut: %v", err)
		}
	})
}

// TestRequestBufferBudgetRefusesNewCalls checks the global bound on
// request bytes buffered: while stalled calls hold it, a new call that must
// buffer is refused with RESOURCE_EXHAUSTED in its protocol; once they are
// gone it goes through. Before, every call could buffer up to the message
// limit, however many there were.
func TestRequestBufferBudgetRefusesNewCalls(t *testing.T) {
	const (
		bodyLen = 60000
		holders = 4
	)
	e := newBodyEnv(t, func(c *gateway.Config) {
		c.MaxMessageSize = 64 << 10
		c.MaxRequestBuffer = 256 << 10 // holds 4 bodies of 60 000 bytes, not 5
		c.BodyTimeout = time.Minute
	})
	msg := mustMarshal(t, &greetv1.GreetRequest{Name: strings.Repeat("a", bodyLen-5-4)})
	body := encodeFrame(0, msg)
	if len(body) != bodyLen {
		t.Fatalf("body of %d bytes, want %d", len(body), bodyLen)
	}
	var conns []net.Conn
	for range holders {
		conn := dialGateway(t, e.gwURL)
		if _, err := io.WriteString(conn, stalledH1Request(hardGreetPrefix+"Greet", bodyLen)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(body[:bodyLen-10000]); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	e.waitArrived(t, holders)

	call := func() string {
		conn := dialGateway(t, e.gwURL)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, stalledH1Request(hardGreetPrefix+"Greet", bodyLen)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(body); err != nil {
			t.Fatal(err)
		}
		st := readH1GRPCWebStatus(t, bufio.NewReader(conn))
		_ = conn.Close()
		return st
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := call()
		if st == "8" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with %d stalled calls holding the budget, a new call got grpc-status %q, want 8 (RESOURCE_EXHAUSTED)", holders, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	deadline = time.Now().Add(5 * time.Second)
	for st := call(); st != "0"; st = call() {
		if time.Now().After(deadline) {
			t.Fatalf("after the stalled calls went away, a new call still got grpc-status %q, want 0", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestContentLengthWithTransferEncodingKeepsConnection is the regression
// test of a request carrying both Content-Length and Transfer-Encoding
// (RFC 9112 section 6.3): net/http frames it by Transfer-Encoding and kept
// the connection open, serving what followed as another request, which is
// how a request is smuggled past an intermediary that framed it by
// Content-Length. It must be answered and the connection closed.
func TestContentLengthWithTransferEncodingKeepsConnection(t *testing.T) {
	t.Parallel()
	e := newBodyEnv(t)
	body := encodeFrame(0, mustMarshal(t, &greetv1.GreetRequest{Name: "x"}))
	conn := dialGateway(t, e.gwURL)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	smuggled := "POST " + hardGreetPrefix + "Greet HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/grpc-web+proto\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	req := "POST " + hardGreetPrefix + "Greet HTTP/1.1\r\nHost: gateway\r\nOrigin: " + testOrigin +
		"\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(body)), 16) + "\r\n" + string(body) + "\r\n0\r\n\r\n" + smuggled
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if got := readH1GRPCWebStatus(t, br); got != "0" {
		t.Errorf("the request was not answered: grpc-status %q", got)
	}
	if res, err := http.ReadResponse(br, nil); err == nil {
		res.Body.Close()
		t.Fatalf("the connection stayed open and served the bytes after the body as a request (HTTP %d)", res.StatusCode)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("want the connection closed, got %v", err)
	}
}
