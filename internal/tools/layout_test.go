package tools

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFileLines is the size past which a Go file is split by concern
// (STYLE.md: a file over about 800 lines is a sign to split it).
const maxFileLines = 800

// goFiles returns the repository's Go files outside generated code,
// node_modules, testdata and .git, relative to the repository root.
func goFiles(tb testing.TB) []string {
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
			if rel, _ := filepath.Rel(repoRoot, p); rel == "gen" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") {
			rel, _ := filepath.Rel(repoRoot, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no Go files found")
	}
	return files
}

// TestFilesAreSmall fails on a Go file over maxFileLines lines.
func TestFilesAreSmall(t *testing.T) {
	for _, f := range goFiles(t) {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(data, []byte("\n")); n > maxFileLines {
			t.Errorf("%s has %d lines, over %d: split it by concern", f, n, maxFileLines)
		}
	}
}

// TestPackagesHaveDocs fails on a package (its non-test files) without a
// doc comment saying what it is for.
func TestPackagesHaveDocs(t *testing.T) {
	dirs := map[string]bool{} // dir -> has a package doc
	for _, f := range goFiles(t) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		dir := filepath.Dir(f)
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, filepath.Join(repoRoot, f), nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		doc := file.Doc != nil && strings.TrimSpace(file.Doc.Text()) != ""
		dirs[dir] = dirs[dir] || doc
	}
	for dir, ok := range dirs {
		if !ok {
			t.Errorf("package in %s has no doc comment: say what it is for in a // Package (or // Command) comment", dir)
		}
	}
}
