package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// The HTTP/2 attacks of the last years against the listener corsgate serve
// builds (h2c here; the TLS listener shares the server): each must end with
// the attacking connection cut within a bound, and the gateway still
// answering a Greet on a fresh connection. They hold because of net/http's
// HTTP/2 server and the limits serve sets on it (MaxHeaderBytes, timeouts);
// these tests are what keeps a change of those limits, or of the server,
// from silently reopening them.

// h2Attacker is a raw HTTP/2 client connection that writes whatever frames
// a test wants and watches, in the background, for the server's GOAWAY or
// the connection's end.
type h2Attacker struct {
	conn   net.Conn
	fr     *http2.Framer
	host   string
	closed chan struct{} // closed when the read side saw GOAWAY, EOF or an error
	goaway atomic.Pointer[http2.GoAwayFrame]
}

// dialH2 opens an h2c connection (prior knowledge) to the gateway at
// baseURL and sends the client preface and an empty SETTINGS frame. When
// read is false, nothing reads the connection: the server's answers back up,
// as they do for a client that floods without reading.
func dialH2(t *testing.T, baseURL string, read bool) *h2Attacker {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	a := &h2Attacker{conn: conn, fr: http2.NewFramer(conn, conn), host: u.Host, closed: make(chan struct{})}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := a.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if read {
		go a.readLoop()
	}
	return a
}

func (a *h2Attacker) readLoop() {
	defer close(a.closed)
	for {
		f, err := a.fr.ReadFrame()
		if err != nil {
			return
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			a.goaway.Store(ga)
			return
		}
	}
}

// isClosed reports whether the server has cut the connection.
func (a *h2Attacker) isClosed() bool {
	select {
	case <-a.closed:
		return true
	default:
		return false
	}
}

// greetHeaders is the header block of a gRPC-Web Greet call from an allowed
// origin, HPACK-encoded.
func (a *h2Attacker) greetHeaders(t *testing.T, extra ...hpack.HeaderField) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: a.host},
		{Name: ":path", Value: "/greet.v1.GreetService/Greet"},
		{Name: "content-type", Value: "application/grpc-web+proto"},
		{Name: "origin", Value: serveOrigin},
	}
	for _, f := range append(fields, extra...) {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// waitClosed waits up to d for the server to cut the connection.
func (a *h2Attacker) waitClosed(d time.Duration) bool {
	select {
	case <-a.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// assertStillServes fails the test unless a Greet through the gateway, on a
// new connection, succeeds.
func assertStillServes(t *testing.T, rs *runningServe) {
	t.Helper()
	for _, h2c := range []bool{false, true} {
		client := greetv1connect.NewGreetServiceClient(serveClient(t, h2c), rs.url, connect.WithGRPCWeb())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
		cancel()
		if err != nil || out.Msg.GetGreeting() != "Hello, Ada!" {
			t.Errorf("Greet after the attack (h2c %v) = %v, %v", h2c, out, err)
		}
	}
}

// maxGoroutines samples runtime.NumGoroutine until stop is closed and
// returns the highest count seen.
func maxGoroutines(stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		highest := runtime.NumGoroutine()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- highest
				return
			case <-tick.C:
				highest = max(highest, runtime.NumGoroutine())
			}
		}
	}()
	return out
}

// heapInuse returns the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestServeRapidReset opens streams and cancels each at once
// (CVE-2023-44487). net/http runs at most MaxConcurrentStreams handlers of a
// connection at once and sends GOAWAY when the client outruns them, so the
// gateway's goroutines stay bounded whether or not the connection is cut,
// and other clients are served during the attack. Not parallel: it counts
// the process's goroutines.
func TestServeRapidReset(t *testing.T) {
	rs := startServe(t, "--backend", serveBackend(t, false), "--allow-origin", serveOrigin)
	baseline := runtime.NumGoroutine()
	a := dialH2(t, rs.url, true)
	block := a.greetHeaders(t)
	stop := make(chan struct{})
	highest := maxGoroutines(stop)
	const streams = 30_000
	opened := 0
	_ = a.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for id := uint32(1); opened < streams && !a.isClosed(); id += 2 {
		if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
			break
		}
		if err := a.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		opened++
	}
	assertStillServes(t, rs)
	close(stop)
	peak := <-highest
	t.Logf("%d streams opened and reset; connection cut: %v (GOAWAY %v); goroutines %d at baseline, %d at most",
		opened, a.isClosed(), a.goaway.Load(), baseline, peak)
	// 250 concurrent handlers, each with a backend stream and its reader,
	// plus net/http's own: well under 2 000 above the baseline.
	if peak-baseline > 2000 {
		t.Errorf("goroutines grew from %d to %d during the attack: handlers are not bounded per connection", baseline, peak)
	}
}

// TestServeContinuationFlood sends one header block in endless CONTINUATION
// frames (CVE-2023-45288): the server must cut the connection once the block
// passes its header limit, long before it has read 64 MiB.
func TestServeContinuationFlood(t *testing.T) {
	t.Parallel()
	rs := startServe(t, "--backend", serveBackend(t, false), "--allow-origin", serveOrigin)
	a := dialH2(t, rs.url, true)
	if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.greetHeaders(t)}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	if err := enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 8<<10)}); err != nil {
		t.Fatal(err)
	}
	fragment := buf.Bytes()
	const limit = 64 << 20
	sent := 0
	_ = a.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for sent < limit && !a.isClosed() {
		if err := a.fr.WriteContinuation(1, false, fragment); err != nil {
			break
		}
		sent += len(fragment)
	}
	if !a.waitClosed(10 * time.Second) {
		t.Fatalf("after %d bytes of CONTINUATION the connection is still open", sent)
	}
	if sent >= limit {
		t.Fatalf("the server read %d bytes of one header block before cutting the connection", sent)
	}
	t.Logf("connection cut after %d bytes of CONTINUATION", sent)
	assertStillServes(t, rs)
}

// TestServeControlFrameFloods sends PING and SETTINGS frames without ever
// reading the answers (CVE-2019-9512, CVE-2019-9515). The server queues an
// acknowledgement for each: it must either cut the connection or stop
// reading it (TCP then holds the attacker back), and never queue without
// bound. Not parallel: it measures the process's heap.
func TestServeControlFrameFloods(t *testing.T) {
	rs := startServe(t, "--backend", serveBackend(t, false), "--allow-origin", serveOrigin)
	floods := []struct {
		name  string
		write func(fr *http2.Framer) error
	}{
		{name: "PING", write: func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}) }},
		{name: "SETTINGS", write: func(fr *http2.Framer) error {
			return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 16})
		}},
	}
	for _, fl := range floods {
		t.Run(fl.name, func(t *testing.T) {
			before := heapInuse()
			a := dialH2(t, rs.url, false)
			const maxFrames = 5_000_000
			sent := 0
			var err error
			_ = a.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			for ; sent < maxFrames; sent++ {
				if err = fl.write(a.fr); err != nil {
					break
				}
			}
			held := heapInuse()
			var ne net.Error
			switch {
			case err == nil:
				t.Fatalf("%d %s frames written: the server kept reading and queueing", sent, fl.name)
			case errors.As(err, &ne) && ne.Timeout():
				t.Logf("after %d %s frames the server stopped reading (the attacker is held back by TCP)", sent, fl.name)
			default:
				t.Logf("connection cut after %d %s frames: %v", sent, fl.name, err)
			}
			// The acknowledgements queued for one connection: net/http caps
			// them at 10 000 control frames.
			if grown := int64(held) - int64(before); grown > 32<<20 {
				t.Errorf("heap grew by %d MiB while the flood was held", grown>>20)
			}
			_ = a.conn.Close()
		})
	}
	assertStillServes(t, rs)
}

// TestServeZeroWindow opens server streams from a client that sets its
// stream window to zero and never opens it, so the gateway can send no
// data: what each such stream pins (the gateway's buffers, the backend
// stream's window) must stay under the bound SECURITY.md documents for a
// stuck stream, however much the backend has to send, and other clients
// are served meanwhile. Not parallel: it measures the process's heap.
func TestServeZeroWindow(t *testing.T) {
	rs := startServe(t, "--backend", serveBackend(t, false), "--allow-origin", serveOrigin)
	before := heapInuse()
	a := dialH2(t, rs.url, true)
	if err := a.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	// Each stream has about 400 MB to send: 100 000 greetings of 4 KiB.
	msg, err := proto.Marshal(&greetv1.GreetStreamRequest{Name: strings.Repeat("n", 4<<10), Count: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{0, 0, 0, 0, 0}, msg...)
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: a.host},
		{Name: ":path", Value: "/greet.v1.GreetService/GreetStream"},
		{Name: "content-type", Value: "application/grpc-web+proto"}, {Name: "origin", Value: serveOrigin},
	} {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	const streams = 100
	for i := range streams {
		id := uint32(2*i + 1)
		if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := a.fr.WriteData(id, true, frame); err != nil {
			t.Fatal(err)
		}
	}
	// Let the backend fill every window it has.
	time.Sleep(2 * time.Second)
	held := heapInuse()
	perStream := (int64(held) - int64(before)) / streams
	t.Logf("%d zero-window streams hold %d KiB of heap each", streams, perStream>>10)
	if perStream > 2<<20 {
		t.Errorf("a zero-window stream holds %d KiB, over the documented 2 MiB per stuck stream", perStream>>10)
	}
	assertStillServes(t, rs)
}
