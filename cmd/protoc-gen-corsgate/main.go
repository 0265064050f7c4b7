// Command protoc-gen-corsgate is a protoc and buf plugin that writes corsgate's
// CORS artifacts from .proto files, so that a team describes its
// browser-facing API once: which procedures browsers may call with GET
// (unary methods with idempotency_level = NO_SIDE_EFFECTS), which headers
// and trailers they read and send (the (corsgate.v1.service) and
// (corsgate.v1.method) options of corsgate/v1/cors.proto), and which
// procedures browsers may never reach (browser_barred).
//
// The parameter format chooses the output:
//
//   - go (default): per proto file with services, a Go file next to the
//     connect-go code, in package <go package>corsgate
//     (gen/greet/v1/greetv1corsgate/greet.corsgate.go), holding per service
//     the procedure table as plain data (GreetServiceCORS) and a constructor
//     that wraps the connect-go handler in an [interceptor.Policy]:
//     mux.Handle(greetv1corsgate.NewGreetServiceHandler(svc, policy)).
//   - yaml, json: one gateway config for `corsgate serve --config`
//     (corsgate.yaml or corsgate.json) with every service of the request.
//   - envoy: one Envoy v3 bootstrap (envoy.yaml): one route per procedure
//     with its CORS policy, to the cluster of its backend, and the grpc_web,
//     cors and router filters.
//
// The aggregated formats need buf's `strategy: all`, so that one run sees
// every file. Their deployment values come from parameters: allow_origin
// (repeatable), allow_credentials, max_age, allow_header, expose_header,
// private_network, strict (yaml/json), listen, backend, and for Envoy
// envoy_connect_bridge. In place of backend, route=PACKAGE=BACKEND
// (repeatable) sends each proto package's services to a named backend and
// backend_address=BACKEND=HOST:PORT (repeatable) says where each backend
// is: yaml and json then write the config's backends: and routes:, and
// envoy one cluster per backend. The Go format takes package_suffix and
// connect_package_suffix. An unknown parameter, or one that does not apply
// to the format, is an error that names it. For example, in buf.gen.yaml:
//
//	plugins:
//	  - local: protoc-gen-corsgate
//	    out: gen
//	    opt: paths=source_relative
//	  - local: protoc-gen-corsgate
//	    out: deploy
//	    strategy: all
//	    opt: [format=yaml, allow_origin=https://app.example.com]
//
// The plugin reads corsgate's options whether or not they reached it parsed,
// and refuses, naming the element, options it does not understand: fields of
// corsgate.v1.Rules or corsgate extensions added by a newer cors.proto.
//
// protoc-gen-corsgate --version prints the version.
package main

import (
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/version"
)

const usage = `protoc-gen-corsgate is a protoc/buf plugin; run it through buf generate or protoc.

Flags:
  -h, --help     Print this help and exit.
      --version  Print the version and exit.

Parameters (opt in buf.gen.yaml):
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program: flags, or a CodeGeneratorRequest on stdin
// answered on stdout. It returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 1 && args[0] == "--version":
		fmt.Fprintln(stdout, "protoc-gen-corsgate", versionString())
		return 0
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprint(stdout, usage)
		for _, name := range paramNames() {
			fmt.Fprintf(stdout, "  %-24s %s\n", name, paramTable[name].help)
		}
		return 0
	case len(args) > 0:
		fmt.Fprintf(stderr, "protoc-gen-corsgate: unknown argument %q\n\n%s", args[0], usage)
		return 2
	}
	in, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "protoc-gen-corsgate: read request:", err)
		return 1
	}
	// corsgate's options stay unknown fields here, whatever is linked: the
	// option checker looks at them before anything decodes them as Rules.
	req := &pluginpb.CodeGeneratorRequest{}
	if err := (proto.UnmarshalOptions{Resolver: withoutCorsgateOptions{}}).Unmarshal(in, req); err != nil {
		fmt.Fprintln(stderr, "protoc-gen-corsgate: read request (this program is run by protoc or buf, not directly):", err)
		return 1
	}
	out, err := proto.Marshal(runRequest(req))
	if err != nil {
		fmt.Fprintln(stderr, "protoc-gen-corsgate: write response:", err)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintln(stderr, "protoc-gen-corsgate: write response:", err)
		return 1
	}
	return 0
}

// versionString is corsgate's version and the interceptor generation the
// generated Go code asserts.
func versionString() string {
	return version.Version + " (interceptor." + versionConstant + ")"
}

// withoutCorsgateOptions resolves extensions as protoregistry.GlobalTypes
// does, except corsgate's own, which it does not know.
type withoutCorsgateOptions struct{}

func (withoutCorsgateOptions) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	if isCorsgateName(name) {
		return nil, protoregistry.NotFound
	}
	return protoregistry.GlobalTypes.FindExtensionByName(name)
}

func (withoutCorsgateOptions) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	xt, err := protoregistry.GlobalTypes.FindExtensionByNumber(message, field)
	if err == nil && isCorsgateName(xt.TypeDescriptor().FullName()) {
		return nil, protoregistry.NotFound
	}
	return xt, err
}

// The plugin writes code that asserts this constant: keep it true of the
// interceptor the plugin is built with.
const _ = interceptor.SupportPackageIsVersion1
