package main

import (
	"context"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/corsgate/corsgate/gateway"
)

// benchTraceparent is the trace context a page instrumented with
// OpenTelemetry web sends, sampled.
var benchTraceparent = []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

// countingExporter is an in-memory span exporter that keeps only a count,
// so that a long benchmark does not grow the heap.
type countingExporter struct{ spans atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// benchTracing is the gateway's tracing as corsgate serve sets it up (the
// SDK with a batch span processor), exporting to memory.
func benchTracing(tb testing.TB) *gateway.Tracing {
	tb.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(&countingExporter{}))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &gateway.Tracing{TracerProvider: tp}
}
