package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/testutil"
)

// deathAnswerBound is how soon after its backend's death a client stream
// must be answered.
const deathAnswerBound = time.Second

// TestClientStreamBackendDeathH1 kills the backend of HTTP/1.1 client
// streams whose bodies keep trickling, as the reliability issue found:
// server streams learned of the death in milliseconds, client streams only
// when their body ended (8 s later), since closing an HTTP/1.1 request body
// reads on to its end. Each must be answered UNAVAILABLE in its protocol,
// with CORS headers, within deathAnswerBound, the body read no further and
// the connection closed after the answer.
func TestClientStreamBackendDeathH1(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		name        string
		contentType string
		json, text  bool
	}{
		{name: "connect/proto", contentType: "application/connect+proto"},
		{name: "connect/json", contentType: "application/connect+json", json: true},
		{name: "grpcweb/binary", contentType: "application/grpc-web+proto"},
		{name: "grpcweb/text", contentType: "application/grpc-web-text", text: true},
	}
	kills := []struct {
		name  string
		start func(tb testing.TB) (addr string, kill func())
	}{
		{name: "stop", start: func(tb testing.TB) (string, func()) {
			addr, s := hardStartBackend(tb)
			return addr, s.Stop
		}},
		{name: "sigkill", start: func(tb testing.TB) (string, func()) {
			p := testutil.StartGreetdProcess(tb, "127.0.0.1:0")
			return p.Addr, p.Kill
		}},
	}
	for _, kill := range kills {
		for _, k := range kinds {
			t.Run(kill.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				addr, stop := kill.start(t)
				_, gwURL := startGateway(t, addr, hardFilesOption(t))
				msg := mustMarshal(t, &greetv1.GreetManyRequest{Name: "drip"})
				if k.json {
					msg = []byte(protojson.Format(&greetv1.GreetManyRequest{Name: "drip"}))
				}
				frame := encodeFrame(0, msg)
				if k.text {
					frame = []byte(base64.StdEncoding.EncodeToString(frame))
				}
				pr, pw := io.Pipe()
				defer pw.Close()
				sent := make(chan struct{})
				go func() {
					// A message every 50 ms for 8 s: the body ends long
					// after the backend's death.
					for i := range 160 {
						if _, err := pw.Write(frame); err != nil {
							return
						}
						if i == 0 {
							close(sent)
						}
						time.Sleep(50 * time.Millisecond)
					}
					_ = pw.Close()
				}()
				req, err := http.NewRequest(http.MethodPost, gwURL+hardGreetPrefix+"GreetMany", pr)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", k.contentType)
				type answer struct {
					res  *http.Response
					body []byte
					err  error
					at   time.Time
				}
				answers := make(chan answer, 1)
				go func() {
					res, err := httpClient(t, false).Do(req)
					if err != nil {
						answers <- answer{err: err, at: time.Now()}
						return
					}
					defer res.Body.Close()
					body, err := io.ReadAll(res.Body)
					answers <- answer{res: res, body: body, err: err, at: time.Now()}
				}()
				<-sent
				time.Sleep(300 * time.Millisecond) // the call is open at the backend
				died := time.Now()
				stop()
				var a answer
				select {
				case a = <-answers:
				case <-time.After(10 * time.Second):
					t.Fatal("no answer 10 s after the backend's death")
				}
				if a.err != nil {
					t.Fatalf("answer: %v", a.err)
				}
				if took := a.at.Sub(died); took > deathAnswerBound {
					t.Errorf("answered %v after the backend's death, want at most %v (the body was still trickling)", took.Round(time.Millisecond), deathAnswerBound)
				}
				if got := a.res.Header.Get("Access-Control-Allow-Origin"); got != testOrigin {
					t.Errorf("Access-Control-Allow-Origin %q, want %q", got, testOrigin)
				}
				if !a.res.Close {
					t.Error("the connection is kept after a body the gateway stopped reading; want Connection: close")
				}
				switch {
				case strings.HasPrefix(k.contentType, "application/connect"):
					checkConnectStreamCode(t, a.res, a.body, "unavailable")
				default:
					if code := grpcWebCode(t, a.res.Header, a.body, k.text); code != "14" {
						t.Errorf("grpc-status %q, want 14 (UNAVAILABLE)", code)
					}
				}
			})
		}
	}
}

// checkConnectStreamCode checks a Connect streaming answer: HTTP 200 and an
// end-stream message carrying the error code want.
func checkConnectStreamCode(tb testing.TB, res *http.Response, body []byte, want string) {
	tb.Helper()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("HTTP status %d (%q), want 200", res.StatusCode, body)
	}
	frames := parseFrames(tb, body)
	if len(frames) == 0 || frames[len(frames)-1].flags != 0x02 {
		tb.Fatalf("frames %q, want an end-stream message last", frames)
	}
	var end struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(frames[len(frames)-1].payload, &end); err != nil || end.Error.Code != want {
		tb.Errorf("end-stream message %q (%v), want code %q", frames[len(frames)-1].payload, err, want)
	}
}
