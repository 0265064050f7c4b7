package tools

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository's top directory, seen from this package.
const repoRoot = "../.."

// goBuiltTools are commands that exist only as Go programs: a script that
// runs one by name depends on whatever binary the PATH has, at whatever
// version. The tool lines of the workspace's go.mod files add to this list.
var goBuiltTools = []string{"staticcheck", "connectconformance", "referenceserver", "grpcwebproxy", "benchstat", "gopls", "golangci-lint"}

// directives returns the entries of one directive of a go.mod or go.work
// file (keyword "use", "tool" or "require"), in both the one-line and the
// block form, comments left out and the rest of each line kept whole.
func directives(tb testing.TB, path, keyword string) []string {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var entries []string
	inBlock := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case line == keyword+" (":
			inBlock = true
		case inBlock && line == ")":
			inBlock = false
		case inBlock && line != "" && !strings.HasPrefix(line, "//"):
			entries = append(entries, line)
		case strings.HasPrefix(line, keyword+" "):
			entries = append(entries, strings.TrimSpace(strings.TrimPrefix(line, keyword+" ")))
		}
	}
	return entries
}

// workspaceModules returns the directories of the modules go.work uses,
// relative to the repository root.
func workspaceModules(tb testing.TB) []string {
	tb.Helper()
	dirs := directives(tb, filepath.Join(repoRoot, "go.work"), "use")
	if len(dirs) == 0 {
		tb.Fatal("go.work uses no module")
	}
	return dirs
}

// goModTools returns the package paths of the tool lines of one go.mod.
func goModTools(tb testing.TB, gomod string) []string {
	tb.Helper()
	return directives(tb, gomod, "tool")
}

// pinnedTools maps the names `go tool` accepts (the last path element and
// the whole package path) to the go.mod that pins them.
func pinnedTools(tb testing.TB) map[string]string {
	tb.Helper()
	pinned := make(map[string]string)
	for _, dir := range workspaceModules(tb) {
		gomod := path.Join(dir, "go.mod")
		for _, pkg := range goModTools(tb, filepath.Join(repoRoot, gomod)) {
			pinned[pkg] = gomod
			pinned[path.Base(pkg)] = gomod
		}
	}
	return pinned
}

// scriptFiles returns every file that runs commands: shell scripts, the CI
// entry point and buf templates, outside node_modules and .git.
func scriptFiles(tb testing.TB) []string {
	tb.Helper()
	var files []string
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
		rel, _ := filepath.Rel(repoRoot, p)
		name := d.Name()
		if strings.HasSuffix(name, ".sh") || rel == filepath.Join(".ci", "run") ||
			(strings.HasPrefix(name, "buf.gen") && strings.HasSuffix(name, ".yaml")) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

var (
	// goInstall is `go install` of anything: its version is not in go.sum.
	goInstall = regexp.MustCompile(`\bgo\s+install\b`)
	// goRunAt is `go run pkg@version`, the same thing without a binary.
	goRunAt = regexp.MustCompile(`\bgo\s+run\s+\S+@\S+`)
	// goTool captures the tool name of `go tool [-n] NAME` (or a buf
	// template's ["go", "tool", "NAME"]).
	goTool = regexp.MustCompile(`\bgo"?,?\s+"?tool"?,?\s+(?:-n\s+)?"?([A-Za-z0-9_./-]+)`)
)

// scriptProblems returns what is wrong with one script's text: a Go tool
// installed or run outside go.sum, or run from the PATH.
func scriptProblems(text string, pinned map[string]string) []string {
	var problems []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		code := strings.TrimSpace(line)
		if strings.HasPrefix(code, "#") {
			continue // a comment may name a tool
		}
		if goInstall.MatchString(code) {
			problems = append(problems, lineRef(n, code, "go install: pin the tool with a tool line in a go.mod and run it with go tool"))
		}
		if goRunAt.MatchString(code) {
			problems = append(problems, lineRef(n, code, "go run pkg@version: pin the tool with a tool line in a go.mod and run it with go tool"))
		}
		for _, m := range goTool.FindAllStringSubmatch(code, -1) {
			if _, ok := pinned[m[1]]; !ok {
				problems = append(problems, lineRef(n, code, "go tool "+m[1]+": no go.mod of the workspace has a tool line for it"))
			}
		}
		for _, name := range goBuiltTools {
			if runsFromPath(code, name) {
				problems = append(problems, lineRef(n, code, name+" is run from the PATH: run it with go tool "+name))
			}
		}
	}
	return problems
}

// runsFromPath reports whether a shell line runs name as a command, rather
// than through `go tool` or as a word inside a string.
func runsFromPath(code, name string) bool {
	re := regexp.MustCompile(`(^|[;&|(]\s*|\$\(\s*|command\s+-v\s+|exec\s+)` + regexp.QuoteMeta(name) + `(\s|$|\))`)
	return re.MatchString(code)
}

func lineRef(n int, code, why string) string {
	return "line " + strconv.Itoa(n) + ": " + code + "\n\t" + why
}

// TestScriptsRunPinnedTools fails when a script installs a Go tool, runs one
// at a version go.sum does not record, or runs one from the PATH: each of
// those passes on a machine that already has the tool and breaks a fresh one.
func TestScriptsRunPinnedTools(t *testing.T) {
	pinned := pinnedTools(t)
	files := scriptFiles(t)
	for _, want := range []string{filepath.Join("scripts", "test.sh"), filepath.Join(".ci", "run"), "buf.gen.yaml"} {
		if !slices.Contains(files, want) {
			t.Fatalf("%s not found among the scripts %v", want, files)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range scriptProblems(string(data), pinned) {
			t.Errorf("%s %s", f, p)
		}
	}
}

// TestGoCodeInstallsNoTool fails when Go code of the repository (a test or
// the bench) shells out to `go install`: the same hole as in a script.
func TestGoCodeInstallsNoTool(t *testing.T) {
	re := regexp.MustCompile(`"go",\s*"install"`)
	err := filepath.WalkDir(repoRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "gen":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if re.Match(data) {
			rel, _ := filepath.Rel(repoRoot, p)
			t.Errorf("%s runs go install: pin the tool with a tool line and build it with go tool -n or go build", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestScriptProblems shows that the checks above catch each way a script can
// depend on an unpinned tool, and pass the pinned forms.
func TestScriptProblems(t *testing.T) {
	pinned := map[string]string{"staticcheck": "internal/tools/go.mod", "protoc-gen-go": "internal/tools/go.mod"}
	tests := []struct {
		name string
		text string
		bad  bool
	}{
		{name: "go install at a version", text: "go install honnef.co/go/tools/cmd/staticcheck@2026.2.2", bad: true},
		{name: "go install in a subshell", text: `(cd "$tmp" && GOBIN="$gobin" go install "x/cmd/$tool@$version")`, bad: true},
		{name: "go run at a version", text: "go run example.com/cmd/x@v1.2.3 ./...", bad: true},
		{name: "go tool not pinned", text: "go tool grpcwebproxy --help", bad: true},
		{name: "tool from the PATH", text: "staticcheck ./...", bad: true},
		{name: "tool looked up on the PATH", text: "if ! command -v staticcheck >/dev/null; then", bad: true},
		{name: "tool after &&", text: "cd x && connectconformance --mode server", bad: true},
		{name: "buf template with an unpinned tool", text: `  - local: ["go", "tool", "protoc-gen-es"]`, bad: true},
		{name: "pinned tool", text: "go tool staticcheck ./...", bad: false},
		{name: "pinned tool path", text: "bin=$(go tool -n staticcheck)", bad: false},
		{name: "buf template with a pinned tool", text: `  - local: ["go", "tool", "protoc-gen-go"]`, bad: false},
		{name: "project code", text: `  - local: ["go", "run", "./cmd/protoc-gen-corsgate"]`, bad: false},
		{name: "comment", text: "# staticcheck runs through go tool", bad: false},
		{name: "word in a message", text: `echo "staticcheck found nothing"`, bad: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scriptProblems(tt.text, pinned)
			if bad := len(got) > 0; bad != tt.bad {
				t.Errorf("scriptProblems(%q) = %q, want problems: %v", tt.text, got, tt.bad)
			}
		})
	}
}
