package tools

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rootDirect is every module the root go.mod may require directly: what the
// packages a team imports or runs (interceptor, gateway, gen, internal, the
// binaries under cmd) import outside _test.go files, and goleak for their
// unit tests. Browser tests, peer benchmarks, the conformance runner, the
// gRPC-Web adapter for *grpc.Server and checks of generated deployment files
// live in nested modules with their own go.mod. Adding a module here is a
// decision every importer of corsgate inherits: say why in the commit.
var rootDirect = []string{
	"connectrpc.com/connect",
	"connectrpc.com/grpchealth",
	"connectrpc.com/grpcreflect",
	"github.com/coder/websocket",   // the gateway's WebSocket transport (improbable-eng/grpc-web's); no dependencies of its own
	"github.com/fsnotify/fsnotify", // corsgate serve's reload on changes of --config and the TLS files; needs only x/sys
	"github.com/prometheus/client_golang",
	"github.com/spf13/cobra",
	"github.com/spf13/pflag",
	// OpenTelemetry tracing: the API (otel, trace) for the gateway's spans,
	// the SDK and the OTLP exporters for corsgate serve, configured by the
	// OTEL_* environment variables; the OTLP protos for the in-process
	// receiver of the tracing test.
	"go.opentelemetry.io/otel",
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc",
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp",
	"go.opentelemetry.io/otel/sdk",
	"go.opentelemetry.io/otel/trace",
	"go.opentelemetry.io/proto/otlp",
	"go.uber.org/goleak",
	"golang.org/x/net",
	"google.golang.org/genproto/googleapis/rpc",
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
	"sigs.k8s.io/yaml",
}

// directRequirements returns the module paths a go.mod requires without an
// "// indirect" comment.
func directRequirements(tb testing.TB, gomod string) []string {
	tb.Helper()
	var direct []string
	for _, spec := range directives(tb, gomod, "require") {
		if !strings.Contains(spec, "// indirect") {
			direct = append(direct, strings.Fields(spec)[0])
		}
	}
	slices.Sort(direct)
	return direct
}

// TestRootModuleRequiresOnlyWhatItShips fails when the root go.mod gains a
// direct requirement that is not on the list above (a test-only tool crept
// back) or loses one the list names (the list went stale).
func TestRootModuleRequiresOnlyWhatItShips(t *testing.T) {
	got := directRequirements(t, filepath.Join(repoRoot, "go.mod"))
	want := slices.Sorted(slices.Values(rootDirect))
	for _, m := range got {
		if !slices.Contains(want, m) {
			t.Errorf("root go.mod requires %s directly: move what needs it into a nested module, or add it to rootDirect with the reason", m)
		}
	}
	for _, m := range want {
		if !slices.Contains(got, m) {
			t.Errorf("root go.mod no longer requires %s: drop it from rootDirect", m)
		}
	}
}

// TestNestedModulesStayOutOfRoot fails when a nested module is not joined by
// go.work, so that `go test` from the root would silently skip it.
func TestNestedModulesStayOutOfRoot(t *testing.T) {
	used := workspaceModules(t)
	err := filepath.WalkDir(repoRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "go.mod" {
			return nil
		}
		rel, _ := filepath.Rel(repoRoot, filepath.Dir(p))
		dir := "./" + filepath.ToSlash(rel)
		if rel == "." {
			dir = "."
		}
		if !slices.Contains(used, dir) {
			t.Errorf("%s has a go.mod that go.work does not use: add it with go work use %s", dir, dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDirectRequirements checks the go.mod reader on the forms go mod tidy
// writes.
func TestDirectRequirements(t *testing.T) {
	gomod := filepath.Join(t.TempDir(), "go.mod")
	text := "module x\n\ngo 1.26.0\n\nrequire a.example/one v1.0.0\n\nrequire (\n\tb.example/two v1.2.0\n\tc.example/three v0.1.0 // indirect\n)\n\ntool d.example/cmd/four\n"
	if err := os.WriteFile(gomod, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	got := directRequirements(t, gomod)
	if want := []string{"a.example/one", "b.example/two"}; !slices.Equal(got, want) {
		t.Errorf("directRequirements = %q, want %q", got, want)
	}
}
