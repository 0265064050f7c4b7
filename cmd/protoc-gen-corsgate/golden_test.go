package main

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// corsM gives cors.proto, which has no go_package, its Go package, as buf's
// managed mode does in this repository.
const corsM = ",Mcorsgate/v1/cors.proto=github.com/corsgate/corsgate/gen/corsgate/v1"

var acmeFiles = []string{"acme/v1/shop.proto", "acme/v1/editions.proto", "acme/v1/legacy.proto", "acme/v1/types.proto"}

// routedFiles are two proto packages, acme.v1 and greet.v1, for the cases
// with route parameters.
var routedFiles = append(slices.Clone(acmeFiles), "greet/v1/greet.proto")

// routedParameter sends each package of routedFiles to a backend of its own,
// one at a host name and one at an IP address.
const routedParameter = "route=acme.v1=shop,route=greet.v1=greet," +
	"backend_address=shop=shop.internal:9090,backend_address=greet=127.0.0.1:9091"

// goldenCase is one plugin run whose output is kept in testdata/golden/<name>.
type goldenCase struct {
	name        string
	files       []string
	edition2024 []string
	parameter   string
}

var goldenCases = []goldenCase{
	{
		name:      "go",
		files:     acmeFiles,
		parameter: "paths=source_relative" + corsM,
	},
	{
		name:      "go-import-paths",
		files:     []string{"acme/v1/legacy.proto"},
		parameter: "package_suffix=cors,connect_package_suffix=" + corsM,
	},
	{
		name:        "go-edition2024",
		files:       []string{"acme/v1/editions.proto"},
		edition2024: []string{"acme/v1/editions.proto"},
		parameter:   "paths=source_relative" + corsM,
	},
	{
		name:  "yaml",
		files: acmeFiles,
		parameter: "format=yaml,listen=:8080,backend=127.0.0.1:9090," +
			"allow_origin=https://app.example.com,allow_origin=https://*.example.net,allow_credentials=true," +
			"max_age=10m,allow_header=X-Trace,expose_header=x-debug,private_network,strict=true",
	},
	{
		name:        "yaml-edition2024",
		files:       []string{"acme/v1/editions.proto"},
		edition2024: []string{"acme/v1/editions.proto"},
		parameter:   "format=yaml",
	},
	{
		name:      "json",
		files:     acmeFiles,
		parameter: "format=json,allow_origin=*,max_age=0",
	},
	{
		name:      "yaml-routes",
		files:     routedFiles,
		parameter: "format=yaml,listen=:8080,allow_origin=https://app.example.com,max_age=600," + routedParameter,
	},
	{
		name:  "envoy-routes",
		files: routedFiles,
		parameter: "format=envoy,listen=0.0.0.0:10000,allow_origin=https://app.example.com,allow_credentials=true," +
			"max_age=600,expose_header=x-debug," + routedParameter,
	},
	{
		name:  "envoy",
		files: acmeFiles,
		parameter: "format=envoy,backend=greetd.internal:9090,listen=0.0.0.0:10000," +
			"allow_origin=https://app.example.com:443,allow_origin=https://*.example.net,allow_credentials=true," +
			"max_age=600,expose_header=x-debug,private_network,envoy_connect_bridge",
	},
}

// TestGolden runs every case twice, with corsgate's option types linked and
// not, and compares both outputs with the golden files. go test -update
// rewrites them.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			protos := compileProtos(t, []string{"testdata/protos", "../../proto"}, tc.files, tc.edition2024...)
			linked := responseFiles(t, runRequest(newRequest(t, protos, tc.files, tc.parameter, true)))
			unlinked := responseFiles(t, runRequest(newRequest(t, protos, tc.files, tc.parameter, false)))
			if len(linked) == 0 {
				t.Fatal("no output")
			}
			for name, content := range linked {
				if unlinked[name] != content {
					t.Errorf("%s differs when corsgate's options are not linked:\n%s", name, unlinked[name])
				}
			}
			if len(unlinked) != len(linked) {
				t.Errorf("linked run wrote %d files, unlinked %d", len(linked), len(unlinked))
			}
			compareGolden(t, filepath.Join("testdata", "golden", tc.name), linked)
		})
	}
}

// compareGolden compares files with the directory dir, or rewrites dir with
// -update.
func compareGolden(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			path := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	var want []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		want = append(want, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatalf("read golden files (run go test -update to write them): %v", err)
	}
	var got []string
	for name := range files {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("generated files %v, golden files %v (go test -update rewrites them)", got, want)
	}
	for _, name := range got {
		golden, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			continue // reported above
		}
		if string(golden) != files[name] {
			t.Errorf("%s differs from its golden file (go test -update rewrites it):\n%s", name, diffLines(string(golden), files[name]))
		}
	}
}

// diffLines shows the first differing line of two texts.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return "(equal lines; different line endings?)"
}

// TestSupportedFeatures checks what the plugin declares to protoc and buf:
// proto3 optional and editions from proto2 through 2024.
func TestSupportedFeatures(t *testing.T) {
	t.Parallel()
	protos := compileProtos(t, []string{"testdata/protos", "../../proto"}, []string{"acme/v1/shop.proto"})
	for _, parameter := range []string{"", "format=yaml", "format=nope"} {
		resp := runRequest(newRequest(t, protos, []string{"acme/v1/shop.proto"}, parameter, false))
		want := uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL | pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)
		if resp.GetSupportedFeatures() != want {
			t.Errorf("parameter %q: supported features %b, want %b", parameter, resp.GetSupportedFeatures(), want)
		}
		if got := descriptorpb.Edition(resp.GetMinimumEdition()); got != descriptorpb.Edition_EDITION_PROTO2 {
			t.Errorf("parameter %q: minimum edition %v", parameter, got)
		}
		if got := descriptorpb.Edition(resp.GetMaximumEdition()); got != descriptorpb.Edition_EDITION_2024 {
			t.Errorf("parameter %q: maximum edition %v", parameter, got)
		}
	}
}
