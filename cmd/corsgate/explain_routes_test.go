package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/testutil"
)

// TestExplainRouted explains procedures of a routed config: the route, the
// backend and the route's policy, and the verdict under that policy.
func TestExplainRouted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serveWriteDescriptors(t, filepath.Join(dir, "greet.binpb"), greetv1.File_greet_v1_greet_proto)
	serveWriteDescriptors(t, filepath.Join(dir, "testing.binpb"), testgrpc.File_grpc_testing_test_proto)
	path := filepath.Join(dir, "corsgate.yaml")
	serveWriteFile(t, path, `allow-origin: [`+serveOrigin+`]
backends:
  greet: {addresses: ["127.0.0.1:1"], descriptors: greet.binpb}
  testing: {addresses: ["127.0.0.1:2"], descriptors: testing.binpb}
routes:
  - services: ["grpc.testing.TestService"]
    backend: testing
    allow-origin: [`+routeAdminOrigin+`]
    max-age: 60
`)
	tests := []struct {
		name, procedure, origin string
		code                    int
		want                    []string
	}{
		{name: "route policy allows", procedure: "/grpc.testing.TestService/UnaryCall", origin: routeAdminOrigin,
			want: []string{"ALLOWED", "route: routes[0] (services grpc.testing.TestService)", "backend: testing",
				"policy: allow-origin [" + routeAdminOrigin + "]", "max-age 1m0s", "Access-Control-Max-Age: 60"}},
		{name: "route policy refuses the default origin", procedure: "/grpc.testing.TestService/UnaryCall", origin: serveOrigin, code: 1,
			want: []string{"REFUSED", "backend: testing"}},
		{name: "service no route claims", procedure: "/greet.v1.GreetService/Greet", origin: serveOrigin,
			want: []string{"ALLOWED", "route: no route", "backend: greet", "policy: allow-origin [" + serveOrigin + "]"}},
		{name: "not routed", procedure: "/nosuch.v1.S/M", origin: serveOrigin, code: 1, want: []string{"is not routed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut testutil.SyncBuffer
			code := run(context.Background(), []string{"explain", "--config", path, "--origin", tt.origin, "--procedure", tt.procedure}, &out, &errOut)
			all := out.String() + errOut.String()
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}
