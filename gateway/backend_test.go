package gateway_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/testutil"
)

// writeDescriptorFile writes the greet service's descriptor set to a file.
func writeDescriptorFile(tb testing.TB) string {
	tb.Helper()
	data, err := proto.Marshal(testutil.DescriptorSet(greetv1.File_greet_v1_greet_proto))
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "greet.binpb")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestBackendDownThenUp checks that a gateway started before its backend
// answers UNAVAILABLE, with CORS, in the caller's protocol, then serves once
// the backend comes up, without a restart; both with descriptors from a
// file and from reflection.
func TestBackendDownThenUp(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"descriptor file", "reflection"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			var opts []gatewayOption
			if mode == "descriptor file" {
				files, err := gateway.LoadDescriptorFile(writeDescriptorFile(t))
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, func(c *gateway.Config) { c.Files = files })
			}
			g, url := startGateway(t, addr, opts...)
			for _, k := range clientKinds() {
				client := newGreetClient(t, url, k)
				_, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "x"}))
				if got := connect.CodeOf(err); got != connect.CodeUnavailable {
					t.Errorf("%s: backend down: code = %v (%v), want unavailable", k.name, got, err)
				}
				var cerr *connect.Error
				if mode == "descriptor file" && k.proto != "grpc" && errAs(err, &cerr) {
					if got := cerr.Meta().Get("Access-Control-Allow-Origin"); got != testOrigin {
						t.Errorf("%s: UNAVAILABLE without CORS (%v)", k.name, cerr.Meta())
					}
				}
			}
			if res, err := http.Get(url + "/healthz"); err != nil || res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/healthz with the backend down: %v %v", res, err)
			} else {
				_ = res.Body.Close()
			}

			lis, err := net.Listen("tcp", addr)
			if err != nil {
				t.Skipf("the port was taken meanwhile: %v", err)
			}
			serveBackendOn(t, lis, nil)
			waitReady(t, g)
			client := newGreetClient(t, url, clientKinds()[0])
			deadline := time.Now().Add(10 * time.Second)
			for {
				res, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "Up"}))
				if err == nil {
					if res.Msg.GetGreeting() != "Hello, Up!" {
						t.Errorf("greeting %q", res.Msg.GetGreeting())
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still failing after the backend came up: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			res, err := http.Get(url + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("/healthz = %d with the backend up", res.StatusCode)
			}
		})
	}
}

// TestReflectionMatchesDescriptorFile checks that reflection and a
// descriptor file give the same routes and CORS rules, and that the rules
// survive when the option types are unknown to the decoder.
func TestReflectionMatchesDescriptorFile(t *testing.T) {
	t.Parallel()
	backend := startBackend(t, nil)
	byReflection, _ := startGateway(t, backend)
	waitReady(t, byReflection)

	files, err := gateway.LoadDescriptorFile(writeDescriptorFile(t))
	if err != nil {
		t.Fatal(err)
	}
	byFile, _ := startGateway(t, backend, func(c *gateway.Config) { c.Files = files })

	// The same set decoded without any extension known: corsgate's options
	// stay unknown bytes in MethodOptions.
	raw, err := proto.Marshal(testutil.DescriptorSet(greetv1.File_greet_v1_greet_proto))
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := (proto.UnmarshalOptions{Resolver: new(protoregistry.Types)}).Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	for _, f := range set.GetFile() {
		for _, s := range f.GetService() {
			for _, m := range s.GetMethod() {
				if m.GetName() == "Greet" && len(m.GetOptions().ProtoReflect().GetUnknown()) == 0 {
					t.Fatal("the test set should carry the options as unknown fields")
				}
			}
		}
	}
	unlinked, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	byUnlinked, _ := startGateway(t, backend, func(c *gateway.Config) { c.Files = unlinked })

	want := greetServices(byFile.Table().Services())
	if len(want) != 1 || len(want[0].Procedures) != 6 {
		t.Fatalf("descriptor file: services %+v", want)
	}
	for name, g := range map[string]*gateway.Gateway{"reflection": byReflection, "unlinked options": byUnlinked} {
		if got := greetServices(g.Table().Services()); !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs from the descriptor file:\n got %+v\nwant %+v", name, got, want)
		}
	}
	var greet, reset bool
	for _, p := range want[0].Procedures {
		switch p.Name {
		case "Greet":
			greet = slices.Contains(p.Methods, "GET") && slices.Contains(p.RequestHeaders, "authorization")
		case "ResetGreetings":
			reset = p.BrowserBarred
		}
	}
	if !greet || !reset {
		t.Errorf("custom options lost: %+v", want)
	}
}

// greetServices keeps the services a browser may reach: the greet service.
func greetServices(all []interceptor.Service) []interceptor.Service {
	var out []interceptor.Service
	for _, s := range all {
		if s.Name == "greet.v1.GreetService" {
			out = append(out, s)
		}
	}
	return out
}

// TestCancellationReachesBackend checks that a client canceling a stream
// cancels the backend's call.
func TestCancellationReachesBackend(t *testing.T) {
	t.Parallel()
	canceled := make(chan struct{}, 8)
	backend := startBackend(t, nil, grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		if ss.Context().Err() != nil {
			canceled <- struct{}{}
		}
		return err
	}))
	g, url := startGateway(t, backend)
	waitReady(t, g)
	for _, k := range clientKinds() {
		if !k.h2 && k.proto == "grpcweb" && strings.Contains(k.name, "json") {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			client := newGreetClient(t, url, k)
			ctx, cancel := context.WithCancel(context.Background())
			stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "C", Count: 1000, IntervalMs: 50}))
			if err != nil {
				t.Fatal(err)
			}
			if !stream.Receive() {
				t.Fatal(stream.Err())
			}
			cancel()
			_ = stream.Close()
			select {
			case <-canceled:
			case <-time.After(5 * time.Second):
				t.Error("the backend's call was not canceled")
			}
		})
	}
}

// TestHealth checks /healthz and the gateway's grpc.health.v1.
func TestHealth(t *testing.T) {
	t.Parallel()
	backend := startBackend(t, nil)
	g, url := startGateway(t, backend)
	waitReady(t, g)
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz = %d %q", res.StatusCode, body)
	}
	tests := []struct {
		service  string
		want     grpchealth.Status
		wantCode connect.Code
	}{
		{service: "", want: grpchealth.StatusServing},
		{service: "greet.v1.GreetService", want: grpchealth.StatusServing},
		{service: "nope.v1.Nope", wantCode: connect.CodeNotFound},
	}
	for _, tt := range tests {
		for _, k := range clientKinds() {
			if k.proto == "grpcweb" && strings.Contains(k.name, "json") {
				continue
			}
			client := grpchealth.NewClient(httpClient(t, k.h2), url, k.opts...)
			out, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: tt.service})
			if tt.wantCode != 0 {
				if connect.CodeOf(err) != tt.wantCode {
					t.Errorf("%s %q: err = %v, want %v", k.name, tt.service, err, tt.wantCode)
				}
				continue
			}
			if err != nil || out.Status != tt.want {
				t.Errorf("%s %q: %v %v, want %v", k.name, tt.service, out, err, tt.want)
			}
		}
	}
}

// TestMetrics checks the counters of calls, CORS verdicts and backend errors.
func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics, err := gateway.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	backend := startBackend(t, nil)
	g, url := startGateway(t, backend, func(c *gateway.Config) { c.Metrics = metrics })
	waitReady(t, g)
	client := newGreetClient(t, url, clientKinds()[1]) // gRPC-Web
	for range 3 {
		if _, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "m"})); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{}))
	tests := []struct {
		code string
		want float64
	}{
		{code: "ok", want: 3},
		{code: "invalid_argument", want: 1},
	}
	for _, tt := range tests {
		labels := map[string]string{"procedure": "/greet.v1.GreetService/Greet", "protocol": "grpc_web", "code": tt.code, "backend": gateway.DefaultBackendName}
		if got := metricValue(t, reg, "corsgate_requests_total", labels); got != tt.want {
			t.Errorf("corsgate_requests_total%v = %v, want %v", labels, got, tt.want)
		}
	}
	latency := map[string]string{"procedure": "/greet.v1.GreetService/Greet", "protocol": "grpc_web", "backend": gateway.DefaultBackendName}
	if got := metricValue(t, reg, "corsgate_request_duration_seconds", latency); got != 4 {
		t.Errorf("latency samples = %v, want 4", got)
	}
	if _, err := gateway.NewMetrics(reg); err == nil {
		t.Error("registering twice succeeded")
	}
}

// TestConnectBackend puts the gateway in front of a connect-go server (as
// the conformance suite's reference server is) that sets CORS headers of
// its own: they must not reach the client; the gateway's policy decides.
func TestConnectBackend(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(nil)))
	leaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "*")
		mux.ServeHTTP(w, r)
	})
	backendURL := serveHandler(t, leaky)
	g, url := startGateway(t, backendURL, func(c *gateway.Config) { c.Files = protoregistry.GlobalFiles })
	waitReady(t, g)
	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := newGreetClient(t, url, k)
			res, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "Cx"}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetGreeting() != "Hello, Cx!" || res.Trailer().Get("X-Greet-Trailer") != "greeted" {
				t.Errorf("res %v trailers %v", res.Msg, res.Trailer())
			}
			if k.proto == "grpc" {
				return
			}
			if got := res.Header().Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{testOrigin}) {
				t.Errorf("Access-Control-Allow-Origin = %q, want only the policy's %q", got, testOrigin)
			}
			if got := res.Header().Get("Access-Control-Expose-Headers"); got == "*" || got == "" {
				t.Errorf("Access-Control-Expose-Headers = %q", got)
			}
		})
	}
}

// metricValue returns a counter's value or a histogram's sample count.
func metricValue(tb testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestDecompressedSizeLimit checks that gzip-compressed messages are held
// to the size limit by their decompressed size, as gRPC servers do, in
// front of a connect-go backend that speaks gzip.
func TestDecompressedSizeLimit(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(nil)))
	backendURL := serveHandler(t, mux)
	g, url := startGateway(t, backendURL, func(c *gateway.Config) {
		c.Files = protoregistry.GlobalFiles
		c.MaxMessageSize = 1024
	})
	waitReady(t, g)
	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := newGreetClient(t, url, k, connect.WithSendGzip())
			ctx := context.Background()
			res, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: strings.Repeat("z", 900)}))
			if err != nil || res.Msg.GetGreeting() != "Hello, "+strings.Repeat("z", 900)+"!" {
				t.Errorf("compressed, under the limit: %v", err)
			}
			_, err = client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: strings.Repeat("z", 4000)}))
			if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
				t.Errorf("unary: code = %v (%v), want resource_exhausted", got, err)
			}
			stream := client.GreetMany(ctx)
			_ = stream.Send(&greetv1.GreetManyRequest{Name: "small"})
			_ = stream.Send(&greetv1.GreetManyRequest{Name: strings.Repeat("z", 4000)})
			_, err = stream.CloseAndReceive()
			if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
				t.Errorf("client stream: code = %v (%v), want resource_exhausted", got, err)
			}
		})
	}
}

// TestRefreshKeepsLastGood checks that a failed reflection refresh keeps
// the descriptors in force, so that calls still get CORS and a proper
// UNAVAILABLE while the backend is away.
func TestRefreshKeepsLastGood(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := greetd.NewServer(nil)
	go func() { _ = s.Serve(lis) }()
	g, url := startGateway(t, lis.Addr().String())
	waitReady(t, g)
	s.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Refresh(ctx); err == nil {
		t.Fatal("refresh with the backend down succeeded")
	}
	if got := greetServices(g.Table().Services()); len(got) != 1 {
		t.Fatalf("services after a failed refresh: %+v", got)
	}
	client := newGreetClient(t, url, clientKinds()[1])
	_, err = client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "x"}))
	var cerr *connect.Error
	if !errAs(err, &cerr) || cerr.Code() != connect.CodeUnavailable || cerr.Meta().Get("Access-Control-Allow-Origin") != testOrigin {
		t.Errorf("err = %v, meta %v; want UNAVAILABLE with CORS", err, cerr.Meta())
	}
}
