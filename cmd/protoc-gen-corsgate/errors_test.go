package main

import (
	"strings"
	"testing"
)

// TestParameterErrors checks that bad parameters fail the run with an error
// that names the parameter, and write nothing.
func TestParameterErrors(t *testing.T) {
	t.Parallel()
	protos := compileProtos(t, []string{"testdata/protos", "../../proto"}, []string{"acme/v1/shop.proto"})
	tests := []struct {
		name      string
		parameter string
		want      []string
	}{
		{name: "unknown", parameter: "format=yaml,allow_orign=https://a.example.com", want: []string{`unknown parameter "allow_orign"`, "allow_origin"}},
		{name: "unknown bare", parameter: "verbose", want: []string{`unknown parameter "verbose"`}},
		{name: "format", parameter: "format=xml", want: []string{"parameter format", `"xml"`}},
		{name: "twice", parameter: "format=yaml,format=json", want: []string{"parameter format given twice"}},
		{name: "not for go", parameter: "allow_origin=https://a.example.com" + corsM, want: []string{"parameter allow_origin does not apply to format=go"}},
		{name: "not for yaml", parameter: "format=yaml,package_suffix=x", want: []string{"parameter package_suffix does not apply to format=yaml"}},
		{name: "strict not for envoy", parameter: "format=envoy,allow_origin=https://a.example.com,strict", want: []string{"parameter strict does not apply to format=envoy"}},
		{name: "bool", parameter: "format=yaml,allow_credentials=yes", want: []string{"parameter allow_credentials", `"yes"`}},
		{name: "max age syntax", parameter: "format=yaml,max_age=forever", want: []string{"parameter max_age", `"forever"`}},
		{name: "max age too long", parameter: "format=yaml,max_age=48h", want: []string{"parameter max_age", "86400"}},
		{name: "max age fraction", parameter: "format=yaml,max_age=1500ms", want: []string{"parameter max_age", "whole number of seconds"}},
		{name: "header", parameter: "format=yaml,allow_header=x bad", want: []string{"parameter allow_header", `"x bad"`}},
		{name: "listen", parameter: "format=yaml,listen=8080", want: []string{"parameter listen", `"8080"`}},
		{name: "package suffix", parameter: "package_suffix=a-b", want: []string{"parameter package_suffix", `"a-b"`}},
		{name: "envoy needs origins", parameter: "format=envoy", want: []string{"format=envoy needs at least one allow_origin"}},
		{name: "envoy any header", parameter: "format=envoy,allow_origin=https://a.example.com,allow_header=*", want: []string{"parameter allow_header", "Envoy"}},
		{name: "route syntax", parameter: "format=yaml,route=acme.v1", want: []string{"parameter route", "PACKAGE=BACKEND"}},
		{name: "route twice", parameter: "format=yaml,route=acme.v1=a,route=acme.v1=b,backend_address=a=a:1,backend_address=b=b:1", want: []string{"routed twice"}},
		{name: "route without address", parameter: "format=yaml,route=acme.v1=shop", want: []string{"parameter route: backend shop has no address", "backend_address=shop=HOST:PORT"}},
		{name: "address without route", parameter: "format=yaml,route=acme.v1=shop,backend_address=shop=s:1,backend_address=x=x:1", want: []string{"parameter backend_address", "no route parameter names backend x"}},
		{name: "package without route", parameter: "format=yaml,route=zz.v1=shop,backend_address=shop=s:1", want: []string{"has no route parameter", "route=acme.v1=BACKEND"}},
		{name: "route not for go", parameter: "route=acme.v1=shop" + corsM, want: []string{"parameter route does not apply to format=go"}},
		{name: "backend_address not for go", parameter: "backend_address=shop=s:1" + corsM, want: []string{"parameter backend_address does not apply to format=go"}},
		{name: "route with backend", parameter: "format=yaml,backend=b:1,route=acme.v1=shop,backend_address=shop=s:1", want: []string{"parameter backend does not apply"}},
		{name: "envoy backend host", parameter: "format=envoy,allow_origin=https://a.example.com,backend=:9090", want: []string{"parameter backend", "no host"}},
		// The interceptor validates the deployment values as it would at run time.
		{name: "star with credentials", parameter: "format=yaml,allow_origin=*,allow_credentials", want: []string{"parameters:", "credentials"}},
		{name: "null origin", parameter: "format=envoy,allow_origin=null", want: []string{"parameters:", `"null"`}},
		{name: "origin with path", parameter: "format=json,allow_origin=https://a.example.com/app", want: []string{"parameters:", "https://a.example.com/app"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := runRequest(newRequest(t, protos, []string{"acme/v1/shop.proto"}, tc.parameter, false))
			if resp.Error == nil {
				t.Fatalf("parameter %q: no error; files %d", tc.parameter, len(resp.GetFile()))
			}
			for _, w := range tc.want {
				if !strings.Contains(resp.GetError(), w) {
					t.Errorf("parameter %q: error %q does not contain %q", tc.parameter, resp.GetError(), w)
				}
			}
			if len(resp.GetFile()) != 0 {
				t.Errorf("parameter %q: %d files written despite the error", tc.parameter, len(resp.GetFile()))
			}
		})
	}
}

// TestOptionErrors checks that options the plugin cannot read faithfully fail
// the run, naming the element and the option, whether corsgate's option types
// are linked or not.
func TestOptionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		importPaths []string
		file        string
		linkedToo   bool // also run with the option types linked
		want        []string
	}{
		{
			name:        "newer cors.proto: unknown field in Rules",
			importPaths: []string{"testdata/future"},
			file:        "acme/v1/future.proto",
			linkedToo:   true,
			want: []string{
				"acme/v1/future.proto: acme.v1.FutureService.Greet sets option (corsgate.v1.method) with field allowed_origins (number 5) of corsgate.v1.Rules, which this protoc-gen-corsgate does not understand",
				"update protoc-gen-corsgate",
			},
		},
		{
			name:        "newer cors.proto: unknown extension",
			importPaths: []string{"testdata/future"},
			file:        "acme/v1/future.proto",
			linkedToo:   true,
			want:        []string{"acme/v1/future.proto uses option (corsgate.v1.file), which this protoc-gen-corsgate does not understand"},
		},
		{
			// With the types linked the option bytes would be misread as
			// Rules before the plugin runs, which is why the plugin's main
			// decodes requests without them; only that path is tested.
			name:        "another extension with corsgate's number",
			importPaths: []string{"testdata/bad"},
			file:        "acme/v1/clash.proto",
			want:        []string{"acme.v1.ClashService.Greet sets option (acme.v1.tag), whose number 50871 on google.protobuf.MethodOptions is corsgate's (corsgate.v1.method)", "renumber"},
		},
		{
			name:        "invalid header name",
			importPaths: []string{"testdata/bad", "../../proto"},
			file:        "acme/v1/badheader.proto",
			linkedToo:   true,
			want:        []string{"acme/v1/badheader.proto:", `"x bad"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			protos := compileProtos(t, tc.importPaths, []string{tc.file})
			modes := []bool{false}
			if tc.linkedToo {
				modes = append(modes, true)
			}
			for _, linked := range modes {
				for _, format := range []string{"format=go", "format=yaml"} {
					resp := runRequest(newRequest(t, protos, []string{tc.file}, format+corsM, linked))
					if resp.Error == nil {
						t.Fatalf("linked=%v %s: no error", linked, format)
					}
					for _, w := range tc.want {
						if !strings.Contains(resp.GetError(), w) {
							t.Errorf("linked=%v %s: error\n%s\ndoes not contain\n%s", linked, format, resp.GetError(), w)
						}
					}
				}
			}
		})
	}
}

// TestForeignOptionsIgnored checks that options of other packages do not
// disturb the plugin, whether corsgate's types are linked or not.
func TestForeignOptionsIgnored(t *testing.T) {
	t.Parallel()
	file := "acme/v1/foreign.proto"
	protos := compileProtos(t, []string{"testdata/foreign", "../../proto"}, []string{file})
	for _, linked := range []bool{false, true} {
		files := responseFiles(t, runRequest(newRequest(t, protos, []string{file}, "format=yaml", linked)))
		want := "      - name: Greet\n        methods: [POST]\n        request-headers: [x-foreign]\n"
		if !strings.Contains(files[configYAMLName], want) {
			t.Errorf("linked=%v: config lacks\n%s\ngot:\n%s", linked, want, files[configYAMLName])
		}
	}
}

// TestEnvoyAnyOrigin is the regression test for format=envoy with
// allow_origin=*, which failed because the probe origin was added next to
// "*": it must generate, with Envoy's "*" matcher, and still refuse "*" with
// credentials.
func TestEnvoyAnyOrigin(t *testing.T) {
	t.Parallel()
	protos := compileProtos(t, []string{"testdata/protos", "../../proto"}, []string{"acme/v1/shop.proto"})
	resp := runRequest(newRequest(t, protos, []string{"acme/v1/shop.proto"}, "format=envoy,allow_origin=*", false))
	if resp.Error != nil {
		t.Fatalf("format=envoy,allow_origin=*: %s", resp.GetError())
	}
	files := responseFiles(t, resp)
	if envoy := files[envoyOutputName]; !strings.Contains(envoy, `exact: '*'`) && !strings.Contains(envoy, `exact: "*"`) {
		t.Errorf("envoy.yaml has no exact \"*\" origin matcher:\n%s", envoy)
	}
	resp = runRequest(newRequest(t, protos, []string{"acme/v1/shop.proto"}, "format=envoy,allow_origin=*,allow_credentials", false))
	if resp.Error == nil || !strings.Contains(resp.GetError(), "credentials") {
		t.Errorf("format=envoy with * and credentials: error %q, want a refusal naming credentials", resp.GetError())
	}
}
