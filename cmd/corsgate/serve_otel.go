package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/internal/cliflags"
)

// defaultServiceName is the service.name of corsgate's spans without
// OTEL_SERVICE_NAME (or a service.name in OTEL_RESOURCE_ATTRIBUTES).
const defaultServiceName = "corsgate"

// tracingFlushTimeout bounds how long corsgate serve, shutting down, waits
// for the exporter to send the spans still buffered.
const tracingFlushTimeout = 5 * time.Second

// tracingEnv are the environment variables that turn tracing on; without
// any of them (or with OTEL_TRACES_EXPORTER=none, or OTEL_SDK_DISABLED=true)
// corsgate serve makes no span.
var tracingEnv = []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}

// serveTracing is the tracing of corsgate serve, configured by the
// OpenTelemetry environment variables.
type serveTracing struct {
	tp *sdktrace.TracerProvider
}

// newServeTracing reads the OpenTelemetry environment variables and
// returns the gateway's tracing, or nil when they leave it off:
//
//   - OTEL_TRACES_EXPORTER: "otlp" (the default once an OTLP endpoint is
//     set) or "none";
//   - OTEL_EXPORTER_OTLP_PROTOCOL or OTEL_EXPORTER_OTLP_TRACES_PROTOCOL:
//     "http/protobuf" (the default) or "grpc";
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
//     OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_INSECURE and the rest
//     of the exporter's variables, read by the OTLP exporter;
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES for the resource;
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG and OTEL_BSP_*, read by
//     the SDK;
//   - OTEL_PROPAGATORS, read by [propagatorsFromEnv].
//
// A value it does not know is a [cliflags.UsageError] naming the variable.
func newServeTracing(ctx context.Context, log *slog.Logger) (*serveTracing, *gateway.Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil, nil
	}
	set := false
	for _, k := range tracingEnv {
		if strings.TrimSpace(os.Getenv(k)) != "" {
			set = true
		}
	}
	if !set {
		return nil, nil, nil
	}
	switch exporter := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); exporter {
	case "", "otlp":
	case "none":
		return nil, nil, nil
	default:
		return nil, nil, cliflags.Usagef("OTEL_TRACES_EXPORTER %q: corsgate exports traces with otlp (or none)", exporter)
	}
	protocol, name := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if protocol == "" {
		protocol, name = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	prop, err := propagatorsFromEnv()
	if err != nil {
		return nil, nil, err
	}
	var exp sdktrace.SpanExporter
	switch strings.TrimSpace(protocol) {
	case "", "http/protobuf":
		protocol = "http/protobuf"
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, cliflags.Usagef("%s %q: use http/protobuf or grpc", name, protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: OTLP exporter (%s): %w", protocol, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", defaultServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME, win
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, nil, cliflags.Usagef("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("corsgate serve: tracing", "exporter", "otlp", "protocol", protocol)
	return &serveTracing{tp: tp}, &gateway.Tracing{TracerProvider: tp, Propagator: prop}, nil
}

// propagators are the OTEL_PROPAGATORS values corsgate serves. b3, jaeger,
// xray and ottrace need go.opentelemetry.io/contrib, which corsgate does
// not depend on.
var propagators = map[string]propagation.TextMapPropagator{
	"tracecontext": propagation.TraceContext{},
	"baggage":      propagation.Baggage{},
}

// propagatorsFromEnv reads OTEL_PROPAGATORS, the propagators that read the
// trace context of client requests and write it into backend requests: a
// comma-separated list of "tracecontext" (W3C traceparent and tracestate)
// and "baggage" (W3C baggage), in order, or "none" (anywhere in the list,
// as the OpenTelemetry SDKs read it), which propagates nothing: every span
// then starts a trace of its own, and the trace headers reach the backend
// untouched, as metadata. Unset or empty is "tracecontext,baggage". Any
// other value is a [cliflags.UsageError] naming the variable and the values
// it takes.
func propagatorsFromEnv() (propagation.TextMapPropagator, error) {
	value := os.Getenv("OTEL_PROPAGATORS")
	if strings.TrimSpace(value) == "" {
		value = "tracecontext,baggage"
	}
	var list []propagation.TextMapPropagator
	none := false
	for item := range strings.SplitSeq(value, ",") {
		name := strings.ToLower(strings.TrimSpace(item))
		switch p, ok := propagators[name]; {
		case name == "":
		case name == "none":
			none = true
		case ok:
			list = append(list, p)
		default:
			return nil, cliflags.Usagef("OTEL_PROPAGATORS %q: corsgate propagates tracecontext, baggage or none "+
				"(comma-separated; default tracecontext,baggage), not %q", value, strings.TrimSpace(item))
		}
	}
	if none {
		list = nil
	}
	return propagation.NewCompositeTextMapPropagator(list...), nil
}

// shutdown sends the spans still buffered and stops the exporter; a nil
// *serveTracing does nothing.
func (t *serveTracing) shutdown(ctx context.Context, log *slog.Logger) {
	if t == nil {
		return
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		log.Warn("corsgate serve: tracing shutdown", "error", err)
	}
}
