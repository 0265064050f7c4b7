package deploycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	repoRoot = "../.."
	// bufPath is the buf the repository pins in package.json.
	bufPath = repoRoot + "/node_modules/.bin/buf"
)

// Protos of the repository and of the plugin's tests, as buf modules.
var (
	repoProtos  = repoRoot + "/proto"
	acmeProtos  = repoRoot + "/cmd/protoc-gen-corsgate/testdata/protos"
	acmeFiles   = []string{"acme/v1/shop.proto", "acme/v1/editions.proto", "acme/v1/legacy.proto", "acme/v1/types.proto"}
	greetFiles  = []string{"greet/v1/greet.proto"}
	pluginBuild struct {
		once sync.Once
		dir  string // removed by TestMain
		path string
		err  error
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBuild.dir != "" {
		os.RemoveAll(pluginBuild.dir)
	}
	os.Exit(code)
}

// pluginBinary builds protoc-gen-corsgate from the repository once per test
// binary and returns its absolute path.
func pluginBinary(tb testing.TB) string {
	tb.Helper()
	pluginBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "deploycheck-plugin-")
		if err != nil {
			pluginBuild.err = err
			return
		}
		pluginBuild.dir = dir
		path := filepath.Join(dir, "protoc-gen-corsgate")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/protoc-gen-corsgate")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginBuild.err = fmt.Errorf("go build ./cmd/protoc-gen-corsgate: %w\n%s", err, out)
			return
		}
		pluginBuild.path = path
	})
	if pluginBuild.err != nil {
		tb.Fatal(pluginBuild.err)
	}
	return pluginBuild.path
}

// generate runs protoc-gen-corsgate through the repository's buf on files
// (paths inside one of the module directories, searched in order) with
// strategy all and the options opts, and returns the files it wrote by name.
func generate(tb testing.TB, modules, files []string, opts ...string) map[string][]byte {
	tb.Helper()
	buf, err := filepath.Abs(bufPath)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(buf); err != nil {
		tb.Fatalf("buf is missing (run npm ci at the repository root): %v", err)
	}
	plugin := pluginBinary(tb)

	work := tb.TempDir()
	var bufYAML strings.Builder
	bufYAML.WriteString("version: v2\nmodules:\n")
	for i, m := range modules {
		abs, err := filepath.Abs(m)
		if err != nil {
			tb.Fatal(err)
		}
		name := fmt.Sprintf("m%d", i)
		if err := os.Symlink(abs, filepath.Join(work, name)); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&bufYAML, "  - path: %s\n", name)
	}
	// JSON is YAML: quoting the plugin path and options this way is safe.
	local, _ := json.Marshal([]string{plugin})
	opt, _ := json.Marshal(opts)
	template := fmt.Sprintf("version: v2\nplugins:\n  - local: %s\n    out: out\n    strategy: all\n    opt: %s\n", local, opt)
	writeFile(tb, filepath.Join(work, "buf.yaml"), bufYAML.String())
	writeFile(tb, filepath.Join(work, "buf.gen.yaml"), template)

	args := []string{"generate", "--template", "buf.gen.yaml"}
	for _, f := range files {
		args = append(args, "--path", moduleFile(tb, work, len(modules), f))
	}
	cmd := exec.Command(buf, args...)
	cmd.Dir = work
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("buf %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}

	out := make(map[string][]byte)
	root := filepath.Join(work, "out")
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// moduleFile returns the workspace path (m<i>/file) of the first of n
// modules under work that holds file.
func moduleFile(tb testing.TB, work string, n int, file string) string {
	tb.Helper()
	for i := range n {
		p := fmt.Sprintf("m%d/%s", i, file)
		if _, err := os.Stat(filepath.Join(work, p)); err == nil {
			return p
		}
	}
	tb.Fatalf("%s is in none of the modules", file)
	return ""
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
