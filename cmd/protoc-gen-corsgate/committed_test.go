package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// bufTemplate is the part of a buf.gen.yaml (v2) this test reads.
type bufTemplate struct {
	Managed struct {
		Override []struct {
			FileOption string `json:"file_option"`
			Value      string `json:"value"`
		} `json:"override"`
	} `json:"managed"`
	Plugins []struct {
		Local    json.RawMessage `json:"local"`
		Out      string          `json:"out"`
		Opt      json.RawMessage `json:"opt"`
		Strategy string          `json:"strategy"`
	} `json:"plugins"`
}

// stringOrList decodes a buf field that is a string or a list of strings.
func stringOrList(tb testing.TB, raw json.RawMessage) []string {
	tb.Helper()
	if len(raw) == 0 {
		return nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		tb.Fatalf("%s is neither a string nor a list of strings", raw)
	}
	return list
}

// TestCommittedOutputs runs, in-process, every protoc-gen-corsgate entry of
// the repository's buf templates on the repository's protos, as buf would,
// and compares the result with the committed files: a stale
// gen/**/*.corsgate.go, example/config/corsgate.yaml or
// example/envoy/envoy.yaml fails here, without running buf generate (buf only
// compiles the protos).
func TestCommittedOutputs(t *testing.T) {
	t.Parallel()
	const root = "../.."
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "proto"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".proto") {
			rel, err := filepath.Rel(filepath.Join(root, "proto"), p)
			files = append(files, filepath.ToSlash(rel))
			return err
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	protos := compileProtos(t, []string{filepath.Join(root, "proto")}, files)

	produced := make(map[string]bool)
	runs := 0
	for _, name := range []string{"buf.gen.yaml", "buf.gen.config.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		var tmpl bufTemplate
		if err := yaml.Unmarshal(data, &tmpl); err != nil { // other fields are not this test's
			t.Fatalf("%s: %v", name, err)
		}
		var goPackagePrefix string
		for _, o := range tmpl.Managed.Override {
			if o.FileOption == "go_package_prefix" {
				goPackagePrefix = o.Value
			}
		}
		for _, plugin := range tmpl.Plugins {
			if !strings.Contains(strings.Join(stringOrList(t, plugin.Local), " "), "protoc-gen-corsgate") {
				continue
			}
			runs++
			params := stringOrList(t, plugin.Opt)
			if goPackagePrefix != "" {
				// buf's managed mode: go_package = prefix/<directory of the
				// file>;<last two components of the proto package>.
				for _, fdp := range protos {
					if slices.Contains(files, fdp.GetName()) {
						params = append(params, "M"+fdp.GetName()+"="+goPackagePrefix+"/"+path.Dir(fdp.GetName())+";"+goPackageName(fdp.GetPackage()))
					}
				}
			}
			out := responseFiles(t, runRequest(newRequest(t, protos, files, strings.Join(params, ","), false)))
			if len(out) == 0 {
				t.Errorf("%s: plugin writing to %s produced nothing", name, plugin.Out)
			}
			for file, content := range out {
				committed := filepath.Join(root, plugin.Out, filepath.FromSlash(file))
				produced[filepath.Clean(committed)] = true
				got, err := os.ReadFile(committed)
				if err != nil {
					t.Errorf("%s: %v (run the buf generate commands)", name, err)
					continue
				}
				if string(got) != content {
					t.Errorf("%s is stale (run the buf generate commands):\n%s", committed, diffLines(string(got), content))
				}
			}
		}
	}
	if runs < 3 {
		t.Errorf("found %d protoc-gen-corsgate runs in the buf templates, want the go, yaml and envoy ones", runs)
	}
	// No generated Go file without a proto behind it.
	err = filepath.WalkDir(filepath.Join(root, "gen"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, generatedGoExtension) && !produced[filepath.Clean(p)] {
			t.Errorf("%s has no proto behind it any more: delete it", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// goPackageName is the Go package name buf's managed mode gives a proto
// package: "greet.v1" → "greetv1", "acme" → "acme".
func goPackageName(protoPackage string) string {
	parts := strings.Split(protoPackage, ".")
	if len(parts) >= 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, "")
}
