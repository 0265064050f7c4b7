package interceptor_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

func ExampleNew() {
	_, err := interceptor.New(interceptor.WithAllowedOrigins("*"), interceptor.WithCredentials(true))
	fmt.Println(err)
	_, err = interceptor.New(interceptor.WithAllowedOrigins("https://*example.com"))
	fmt.Println(err)
	policy, err := interceptor.New(
		interceptor.WithAllowedOrigins("https://app.example.com", "https://*.staging.example.com"),
		interceptor.WithCredentials(true),
	)
	fmt.Println(policy != nil, err)
	// Output:
	// interceptor: origin "*" together with credentials: browsers refuse a wildcard when credentials are allowed; list the origins instead, or drop WithCredentials(true)
	// interceptor: origin pattern "https://*example.com" could match hosts of somebody else: a "*" may only stand for whole leftmost labels, as in "https://*.example.com"
	// true <nil>
}

func ExamplePolicy_Wrap() {
	policy, err := interceptor.New(interceptor.WithAllowedOrigins("https://app.example.com"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(policy.Wrap(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(nil))))

	// A browser's preflight for a Connect GET of Greet with a bearer token.
	req := httptest.NewRequest(http.MethodOptions, greetv1connect.GreetServiceGreetProcedure, nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization,x-request-id")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	fmt.Println(rec.Header().Get("Access-Control-Allow-Origin"))
	fmt.Println(rec.Header().Get("Access-Control-Allow-Methods"))

	// The admin procedure is browser_barred: refused, without CORS headers.
	req = httptest.NewRequest(http.MethodOptions, greetv1connect.GreetServiceResetGreetingsProcedure, nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Access-Control-Allow-Origin") == "")
	// Output:
	// 204
	// https://app.example.com
	// GET, POST
	// 403 true
}

func ExamplePolicy_Explain() {
	policy, err := interceptor.New(interceptor.WithAllowedOrigins("https://app.example.com"))
	if err != nil {
		log.Fatal(err)
	}
	table := interceptor.MustNewTable(interceptor.Service{
		Name:       "greet.v1.GreetService",
		Procedures: []interceptor.Procedure{{Name: "SetGreeting", Methods: []string{"POST"}}},
	})
	ex := policy.Explain(table, "https://app.example.com", "/greet.v1.GreetService/SetGreeting", "POST", []string{"x-tenant"})
	fmt.Println("allowed:", ex.Allowed)
	for _, c := range ex.Checks {
		fmt.Println(c.Name, c.OK)
	}
	// Output:
	// allowed: false
	// origin true
	// procedure true
	// barred true
	// method true
	// header x-tenant false
}

func ExampleWithTracing() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	policy, err := interceptor.New(
		interceptor.WithAllowedOrigins("https://app.example.com"),
		interceptor.WithTracing(tp),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(policy.Wrap(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(nil))))

	// A Connect call from a page instrumented with OpenTelemetry web.
	req := httptest.NewRequest(http.MethodPost, greetv1connect.GreetServiceGreetProcedure, strings.NewReader(`{"name":"Ada"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	mux.ServeHTTP(httptest.NewRecorder(), req)

	span := exp.GetSpans()[0]
	fmt.Println(span.Name, span.SpanKind)
	fmt.Println("trace", span.SpanContext.TraceID(), "parent", span.Parent.SpanID())
	for _, kv := range span.Attributes {
		switch kv.Key {
		case "rpc.system", "rpc.service", "rpc.method", interceptor.AttrCORSAllowed:
			fmt.Println(kv.Key, kv.Value.String())
		}
	}
	// Output:
	// greet.v1.GreetService/Greet server
	// trace 0af7651916cd43dd8448eb211c80319c parent b7ad6b7169203331
	// rpc.system connect_rpc
	// rpc.service greet.v1.GreetService
	// rpc.method Greet
	// corsgate.cors.allowed true
}
