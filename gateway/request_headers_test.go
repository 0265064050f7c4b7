package gateway_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	_ "google.golang.org/grpc/encoding/gzip" // the backend accepts gzip, as the attacked one did

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// gzipFrame is a compressed frame whose message decompresses to size bytes.
func gzipFrame(tb testing.TB, size int) []byte {
	tb.Helper()
	msg := mustMarshal(tb, &greetv1.GreetRequest{Name: strings.Repeat("z", size)})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(msg)
	_ = zw.Close()
	return encodeFrame(1, buf.Bytes())
}

// TestDuplicateProtocolHeadersRefused replays the bypass of the
// decompressed-size check with two Grpc-Encoding headers (identity, then
// gzip): the gateway checked the first value and forwarded both, and
// grpc-go decompressed by the last. Every request header the gateway reads
// one value of is now refused when it comes more than once or as a comma
// list, in the caller's protocol, before it reaches the backend.
func TestDuplicateProtocolHeadersRefused(t *testing.T) {
	const limit = 1024
	arr := &hardArrivals{}
	backend := startBackend(t, nil, arr.option())
	_, gwURL := startGateway(t, backend, hardFilesOption(t), func(c *gateway.Config) { c.MaxMessageSize = limit })
	bomb := gzipFrame(t, 256<<10) // under the limit, expanding to 256 times it
	small := encodeFrame(0, mustMarshal(t, &greetv1.GreetRequest{Name: "x"}))

	cases := []struct {
		name        string
		path        string
		contentType string
		header      http.Header
		body        []byte
		// code is how the refusal reads: a grpc-status, or a Connect code.
		code string
	}{
		{name: "grpc-web/two-grpc-encoding", path: "Greet", contentType: "application/grpc-web+proto",
			header: http.Header{"Grpc-Encoding": {"identity", "gzip"}}, body: bomb, code: "3"},
		{name: "grpc-web/grpc-encoding-list", path: "Greet", contentType: "application/grpc-web+proto",
			header: http.Header{"Grpc-Encoding": {"identity, gzip"}}, body: bomb, code: "3"},
		{name: "grpc-web/client-stream", path: "GreetMany", contentType: "application/grpc-web+proto",
			header: http.Header{"Grpc-Encoding": {"identity", "gzip"}}, body: bomb, code: "3"},
		{name: "grpc-web/two-grpc-timeout", path: "Greet", contentType: "application/grpc-web+proto",
			header: http.Header{"Grpc-Timeout": {"1S", "1H"}}, body: small, code: "3"},
		{name: "grpc-web/two-content-type", path: "Greet", contentType: "application/grpc-web+proto",
			header: http.Header{"Content-Type": {"application/grpc-web+proto", "application/grpc-web+json"}}, body: small, code: "3"},
		{name: "grpc/two-grpc-encoding", path: "Greet", contentType: "application/grpc",
			header: http.Header{"Grpc-Encoding": {"identity", "gzip"}}, body: bomb, code: "3"},
		{name: "connect/two-content-encoding", path: "Greet", contentType: "application/proto",
			header: http.Header{"Content-Encoding": {"identity", "gzip"}}, body: bomb[5:], code: "invalid_argument"},
		{name: "connect/two-connect-content-encoding", path: "GreetMany", contentType: "application/connect+proto",
			header: http.Header{"Connect-Content-Encoding": {"identity", "gzip"}}, body: bomb, code: "invalid_argument"},
		{name: "connect/two-connect-timeout", path: "Greet", contentType: "application/proto",
			header: http.Header{"Connect-Timeout-Ms": {"1000", "99999999"}}, body: small[5:], code: "invalid_argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, gwURL+hardGreetPrefix+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if strings.HasPrefix(tc.contentType, "application/grpc") && !strings.HasPrefix(tc.contentType, "application/grpc-web") {
				req.Header.Set("Te", "trailers")
			}
			before, _ := arr.snapshot()
			res, err := httpClient(t, true).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var got string
			switch {
			case strings.HasPrefix(tc.contentType, "application/grpc-web"):
				got = grpcWebCode(t, res.Header, body, false)
			case strings.HasPrefix(tc.contentType, "application/grpc"):
				got = res.Header.Get("Grpc-Status") + res.Trailer.Get("Grpc-Status")
			default:
				if bytes.Contains(body, []byte(`"code":"`+tc.code+`"`)) {
					got = tc.code
				} else {
					got = string(body)
				}
			}
			if got != tc.code {
				t.Errorf("answer %q (HTTP %d), want %q", got, res.StatusCode, tc.code)
			}
			if after, _ := arr.snapshot(); after != before {
				t.Errorf("the call reached the backend")
			}
		})
	}
}
