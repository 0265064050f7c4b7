package gateway_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// gzipBomb is a gzip stream of n zero bytes: about a thousandth of n on
// the wire.
func gzipBomb(tb testing.TB, n int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for n > 0 {
		m := min(n, len(chunk))
		if _, err := zw.Write(chunk[:m]); err != nil {
			tb.Fatal(err)
		}
		n -= m
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestCompressionBombsOnEveryPath sends a compressed message that expands
// to 64 MiB, 16 times the gateway's message limit, and a 4 GiB length
// prefix, in every protocol that frames messages: each must be refused
// with RESOURCE_EXHAUSTED in the caller's protocol, without the backend's
// handler seeing a message and without the gateway inflating the bomb.
// Not parallel: it measures the process's heap.
func TestCompressionBombsOnEveryPath(t *testing.T) {
	e := newHardBadInputEnv(t)
	bomb := encodeFrame(1, gzipBomb(t, 64<<20))
	huge := hardFrameHeader(0, 0xFFFFFFFF)
	type check func(t *testing.T, res *http.Response, body []byte) string
	grpcWebCheck := func(text bool) check {
		return func(t *testing.T, res *http.Response, body []byte) string {
			return grpcWebCode(t, res.Header, body, text)
		}
	}
	grpcCheck := func(_ *testing.T, res *http.Response, _ []byte) string {
		return res.Header.Get("Grpc-Status") + res.Trailer.Get("Grpc-Status")
	}
	connectCheck := func(_ *testing.T, _ *http.Response, body []byte) string {
		if bytes.Contains(body, []byte(`"code":"resource_exhausted"`)) {
			return "8"
		}
		return string(body)
	}
	rows := []struct {
		name     string
		path     string
		ct       string
		header   http.Header
		body     []byte
		text, h2 bool
		code     check
	}{
		{name: "grpc-web unary gzip", path: "Greet", ct: "application/grpc-web+proto", header: http.Header{"Grpc-Encoding": {"gzip"}}, body: bomb, code: grpcWebCheck(false)},
		{name: "grpc-web text unary gzip", path: "Greet", ct: "application/grpc-web-text", header: http.Header{"Grpc-Encoding": {"gzip"}}, body: bomb, text: true, code: grpcWebCheck(true)},
		{name: "grpc-web json unary gzip", path: "Greet", ct: "application/grpc-web+json", header: http.Header{"Grpc-Encoding": {"gzip"}}, body: bomb, code: grpcWebCheck(false)},
		{name: "grpc-web client stream gzip", path: "GreetMany", ct: "application/grpc-web+proto", header: http.Header{"Grpc-Encoding": {"gzip"}}, body: bomb, code: grpcWebCheck(false)},
		{name: "connect stream gzip", path: "GreetMany", ct: "application/connect+proto", header: http.Header{"Connect-Content-Encoding": {"gzip"}}, body: bomb, h2: true, code: connectCheck},
		{name: "connect json stream gzip", path: "GreetMany", ct: "application/connect+json", header: http.Header{"Connect-Content-Encoding": {"gzip"}}, body: bomb, h2: true, code: connectCheck},
		{name: "grpc unary gzip", path: "Greet", ct: "application/grpc", header: http.Header{"Grpc-Encoding": {"gzip"}, "Te": {"trailers"}}, body: bomb, h2: true, code: grpcCheck},
		{name: "grpc client stream gzip", path: "GreetMany", ct: "application/grpc", header: http.Header{"Grpc-Encoding": {"gzip"}, "Te": {"trailers"}}, body: bomb, h2: true, code: grpcCheck},
		{name: "connect stream 4 GiB prefix", path: "GreetMany", ct: "application/connect+proto", body: huge, h2: true, code: connectCheck},
		{name: "grpc unary 4 GiB prefix", path: "Greet", ct: "application/grpc", header: http.Header{"Te": {"trailers"}}, body: huge, h2: true, code: grpcCheck},
		{name: "grpc client stream 4 GiB prefix", path: "GreetMany", ct: "application/grpc", header: http.Header{"Te": {"trailers"}}, body: huge, h2: true, code: grpcCheck},
	}
	var ms runtime.MemStats
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapInuse
			body := row.body
			if row.text {
				body = []byte(base64.StdEncoding.EncodeToString(body))
			}
			req, err := http.NewRequest(http.MethodPost, e.gwURL+hardGreetPrefix+row.path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range row.header {
				req.Header[k] = v
			}
			req.Header.Set("Content-Type", row.ct)
			_, msgsBefore := e.arr.snapshot()
			res, err := httpClient(t, row.h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resBody, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			runtime.ReadMemStats(&ms)
			if grown := int64(ms.HeapInuse) - int64(before); grown > 32<<20 {
				t.Errorf("heap grew by %d MiB: the gateway inflated the message", grown>>20)
			}
			if code := row.code(t, res, resBody); code != "8" {
				t.Errorf("HTTP %d, status %q (body %q), want RESOURCE_EXHAUSTED (8)", res.StatusCode, code, truncate(resBody))
			}
			if res.Header.Get("Access-Control-Allow-Origin") != testOrigin {
				t.Errorf("no CORS headers on the refusal: %v", res.Header)
			}
			if _, msgs := e.arr.snapshot(); msgs != msgsBefore {
				t.Errorf("the backend's handlers received %d messages", msgs-msgsBefore)
			}
		})
	}
}

func truncate(b []byte) string {
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
