package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/h2client"
)

// The floor and the hop split a gateway's CPU per call into what no gateway
// can avoid and what is its own:
//
//   - floor: a net/http server answering every request with a canned
//     gRPC-Web answer, as a gateway would send it, without calling any
//     backend. Its CPU per call is the cost of serving HTTP (and TLS) alone.
//   - hop: a process calling the backend the way the gateway does (its
//     h2client, one gRPC frame per call), driven by the bench. Its CPU per
//     call is the cost of the backend hop alone.
//
// A gateway's own part is its CPU per call less the two.

// grpcFrame returns msg in a gRPC length-prefixed frame with flags.
func grpcFrame(flags byte, msg []byte) []byte {
	f := make([]byte, 5, 5+len(msg))
	f[0] = flags
	binary.BigEndian.PutUint32(f[1:], uint32(len(msg)))
	return append(f, msg...)
}

// greetAnswer is the backend's Greet answer to benchName, marshalled.
func greetAnswer() ([]byte, error) {
	return proto.Marshal(&greetv1.GreetResponse{Greeting: "Hello, " + benchName + "!"})
}

// newFloorHandler answers every request, after reading its body, with what
// a gateway sends for Greet(benchName) in gRPC-Web: the content type, the
// CORS headers of an allowed origin, the 1 KiB message in a data frame and
// grpc-status 0 in a trailer frame. Header values are built once.
func newFloorHandler() (http.Handler, error) {
	msg, err := greetAnswer()
	if err != nil {
		return nil, err
	}
	body := append(grpcFrame(0, msg), grpcFrame(0x80, []byte("grpc-status: 0\r\n"))...)
	var (
		contentType = []string{"application/grpc-web+proto"}
		vary        = []string{"Origin"}
		expose      = []string{"Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin"}
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		h := w.Header()
		h["Content-Type"] = contentType
		h["Vary"] = vary
		if origin := r.Header["Origin"]; len(origin) > 0 {
			h["Access-Control-Allow-Origin"] = origin
			h["Access-Control-Expose-Headers"] = expose
		}
		_, _ = w.Write(body)
	}), nil
}

// hopRun is what one /drive of the hop did; the hop child answers it as
// JSON.
type hopRun struct {
	Calls    int64         `json:"calls"`
	Errors   int64         `json:"errors"`
	FirstErr string        `json:"firstErr,omitempty"`
	Elapsed  time.Duration `json:"elapsed"`
}

// hopCaller calls Greet(benchName) on the backend through h2client as the
// gateway does for a unary call: a fresh request and header map per call, the
// body one replayable frame, the response handed over whole.
type hopCaller struct {
	tr      *h2client.Transport
	url     *url.URL
	host    string
	frame   []byte
	wantLen int // the answer's frame
}

func newHopCaller(backend string) (*hopCaller, error) {
	if backend == "" {
		return nil, fmt.Errorf("%s not set", childBackendEnv)
	}
	tr, err := h2client.New(h2client.Config{Authority: backend})
	if err != nil {
		return nil, err
	}
	req, err := proto.Marshal(&greetv1.GreetRequest{Name: benchName})
	if err != nil {
		return nil, err
	}
	answer, err := greetAnswer()
	if err != nil {
		return nil, err
	}
	return &hopCaller{
		tr:      tr,
		url:     &url.URL{Scheme: "http", Host: backend, Path: "/greet.v1.GreetService/Greet"},
		host:    backend,
		frame:   grpcFrame(0, req),
		wantLen: 5 + len(answer),
	}, nil
}

var (
	hopContentType = []string{"application/grpc"}
	hopTE          = []string{"trailers"}
	hopUserAgent   = []string{"connect-go/1.21.1 (go1.26)"}
	hopOrigin      = []string{benchOrigin}
)

// call makes one call; buf holds the answer and must be larger than it.
func (c *hopCaller) call(ctx context.Context, buf []byte) error {
	h := make(http.Header, 8)
	h["Content-Type"] = hopContentType
	h["Te"] = hopTE
	h["User-Agent"] = hopUserAgent
	h["Origin"] = hopOrigin
	req := &http.Request{
		Method: http.MethodPost, URL: c.url, Host: c.host,
		Proto: "HTTP/2.0", ProtoMajor: 2, Header: h,
		Body: h2client.NewBytesBody(c.frame), ContentLength: int64(len(c.frame)),
		GetBody: func() (io.ReadCloser, error) { return h2client.NewBytesBody(c.frame), nil },
	}
	resp, err := c.tr.Call(ctx, req, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.ReadFull(resp.Body, buf)
	switch {
	case err == nil:
		return fmt.Errorf("answer longer than %d bytes", c.wantLen)
	case !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return fmt.Errorf("read the answer: %w", err)
	}
	status := resp.Trailer.Get("Grpc-Status")
	if status == "" {
		status = resp.Header.Get("Grpc-Status") // trailers-only
	}
	if status != "0" || n != c.wantLen {
		return fmt.Errorf("answer of %d bytes with grpc-status %q, want %d bytes and 0", n, status, c.wantLen)
	}
	return nil
}

// drive keeps conc callers busy for d.
func (c *hopCaller) drive(ctx context.Context, conc int, d time.Duration) hopRun {
	var (
		mu  sync.Mutex
		run hopRun
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Go(func() {
			buf := make([]byte, c.wantLen+1)
			var calls, errs int64
			var first error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if err := c.call(ctx, buf); err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				calls++
			}
			mu.Lock()
			defer mu.Unlock()
			run.Calls += calls
			run.Errors += errs
			if run.FirstErr == "" && first != nil {
				run.FirstErr = first.Error()
			}
		})
	}
	wg.Wait()
	run.Elapsed = time.Since(start)
	return run
}

// newHopHandler serves the hop child's commands: GET /once makes one call
// (the bench's probe), POST /drive?conc=N&duration=D drives the backend and
// answers a [hopRun].
func newHopHandler(backend string) (http.Handler, error) {
	c, err := newHopCaller(backend)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /once", func(w http.ResponseWriter, r *http.Request) {
		if err := c.call(r.Context(), make([]byte, c.wantLen+1)); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})
	mux.HandleFunc("POST /drive", func(w http.ResponseWriter, r *http.Request) {
		conc, err1 := strconv.Atoi(r.URL.Query().Get("conc"))
		d, err2 := time.ParseDuration(r.URL.Query().Get("duration"))
		if err := errors.Join(err1, err2); err != nil || conc < 1 {
			http.Error(w, fmt.Sprintf("bad conc or duration: %v", err), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.drive(r.Context(), conc, d))
	})
	return mux, nil
}

// hopDrive asks the hop child at addr to drive the backend with conc
// callers for d.
func hopDrive(ctx context.Context, addr string, conc int, d time.Duration) (hopRun, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	u := fmt.Sprintf("http://%s/drive?conc=%d&duration=%s", addr, conc, d)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return hopRun{}, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return hopRun{}, fmt.Errorf("hop drive: %w", err)
	}
	defer res.Body.Close()
	var run hopRun
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return run, fmt.Errorf("hop drive: %s: %s", res.Status, b)
	}
	if err := json.NewDecoder(res.Body).Decode(&run); err != nil {
		return run, fmt.Errorf("hop drive: decode: %w", err)
	}
	return run, nil
}

// runHopCell measures the hop once at conc: warm-up, then cfg.duration of
// calls, reading the hop process's CPU around the measured window. It adds
// to res.
func runHopCell(ctx context.Context, t *target, conc int, cfg config, res *unaryResult) error {
	addr, pid := t.plain.addr, t.plain.proc.pid()
	if cfg.warmup > 0 {
		if _, err := hopDrive(ctx, addr, conc, cfg.warmup); err != nil {
			return err
		}
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	run, err := hopDrive(ctx, addr, conc, cfg.duration)
	if err != nil {
		return err
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	res.calls += run.Calls
	res.errors += run.Errors
	if res.firstErr == "" && run.FirstErr != "" {
		res.firstErr = oneLine(run.FirstErr)
	}
	res.elapsed += run.Elapsed
	res.cpu += cpu1 - cpu0
	res.rates = append(res.rates, float64(run.Calls)/run.Elapsed.Seconds())
	return ctx.Err()
}
