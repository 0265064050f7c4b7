//go:build deps

// Package deps pins, while the tree grows, the modules corsgate has chosen, so
// that go mod tidy keeps them. It is never built.
package deps

import (
	_ "connectrpc.com/cors"
	_ "connectrpc.com/grpchealth"
	_ "connectrpc.com/grpcreflect"
	_ "connectrpc.com/vanguard"
	_ "github.com/bufbuild/protocompile"
	_ "github.com/chromedp/chromedp"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/improbable-eng/grpc-web/go/grpcweb"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rs/cors"
	_ "github.com/spf13/cobra"
	_ "go.uber.org/goleak"
	_ "sigs.k8s.io/yaml"
)
