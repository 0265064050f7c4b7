package main

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/corsgate/corsgate/internal/version"
)

func TestFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   []string
		noStdout bool
	}{
		{name: "version", args: []string{"--version"}, stdout: []string{"protoc-gen-corsgate " + version.Version, "SupportPackageIsVersion1"}},
		{name: "help", args: []string{"--help"}, stdout: []string{"buf generate", "allow_origin", "format", "envoy_connect_bridge"}},
		{name: "short help", args: []string{"-h"}, stdout: []string{"Parameters"}},
		{name: "unknown flag", args: []string{"--verbose"}, code: 2, stderr: []string{`unknown argument "--verbose"`}, noStdout: true},
		{name: "two flags", args: []string{"--version", "--help"}, code: 2, stderr: []string{"unknown argument"}, noStdout: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q lacks %q", stdout.String(), w)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			if tc.noStdout && stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// TestStdio runs the plugin the way protoc and buf do: a request on stdin,
// a response on stdout.
func TestStdio(t *testing.T) {
	t.Parallel()
	protos := compileProtos(t, []string{"testdata/protos", "../../proto"}, []string{"acme/v1/shop.proto"})
	tests := []struct {
		name      string
		parameter string
		wantError string
		wantFile  string
	}{
		{name: "go", parameter: "paths=source_relative" + corsM, wantFile: "acme/v1/acmev1corsgate/shop.corsgate.go"},
		{name: "yaml", parameter: "format=yaml,allow_origin=https://app.example.com", wantFile: configYAMLName},
		{name: "unknown parameter", parameter: "format=yaml,colour=blue", wantError: `unknown parameter "colour"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := proto.Marshal(&pluginpb.CodeGeneratorRequest{
				FileToGenerate: []string{"acme/v1/shop.proto"},
				ProtoFile:      protos,
				Parameter:      proto.String(tc.parameter),
			})
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run(nil, bytes.NewReader(in), &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr.String())
			}
			resp := &pluginpb.CodeGeneratorResponse{}
			if err := proto.Unmarshal(stdout.Bytes(), resp); err != nil {
				t.Fatal(err)
			}
			if tc.wantError != "" {
				if !strings.Contains(resp.GetError(), tc.wantError) {
					t.Errorf("response error %q lacks %q", resp.GetError(), tc.wantError)
				}
				return
			}
			if _, ok := responseFiles(t, resp)[tc.wantFile]; !ok {
				t.Errorf("no %s in the response", tc.wantFile)
			}
		})
	}

	var stdout, stderr bytes.Buffer
	if code := run(nil, strings.NewReader("not a request\xff"), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "read request") {
		t.Errorf("garbage on stdin: exit code %d, stderr %q", code, stderr.String())
	}
}
