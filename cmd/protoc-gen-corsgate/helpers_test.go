package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// bufPath is the buf the repository pins in package.json.
const bufPath = "../../node_modules/.bin/buf"

// compileProtos compiles files (paths relative to importPaths, searched in
// order) with buf and returns them and everything they import as descriptor
// protos, dependencies first, as protoc and buf list them in a request.
// Files named in edition2024 are rewritten to edition 2024 after compiling,
// so that the test protos compile with any buf that knows edition 2023; the
// plugin only reads what both editions share.
func compileProtos(tb testing.TB, importPaths []string, files []string, edition2024 ...string) []*descriptorpb.FileDescriptorProto {
	tb.Helper()
	set, err := bufBuildCached(tb, importPaths, files)
	if err != nil {
		tb.Fatal(err)
	}
	registry, err := protodesc.NewFiles(set)
	if err != nil {
		tb.Fatalf("compile %v: %v", files, err)
	}
	byName := make(map[string]*descriptorpb.FileDescriptorProto, len(set.GetFile()))
	for _, fdp := range set.GetFile() {
		byName[fdp.GetName()] = fdp
	}
	var (
		out  []*descriptorpb.FileDescriptorProto
		seen = make(map[string]bool)
		add  func(fd protoreflect.FileDescriptor)
	)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		fdp := proto.CloneOf(byName[fd.Path()]) // the cached set stays as buf wrote it
		for _, name := range edition2024 {
			if name == fd.Path() {
				fdp.Edition = descriptorpb.Edition_EDITION_2024.Enum()
			}
		}
		out = append(out, fdp)
	}
	for _, f := range files {
		fd, err := registry.FindFileByPath(f)
		if err != nil {
			tb.Fatalf("compile %v: %v", files, err)
		}
		add(fd)
	}
	return out
}

// bufBuilds caches compiled sets by input, for the life of the test binary:
// most tests compile the same few files.
var bufBuilds struct {
	mu   sync.Mutex
	sets map[string]*bufBuildResult
}

type bufBuildResult struct {
	once sync.Once
	set  *descriptorpb.FileDescriptorSet
	err  error
}

// bufBuildCached returns bufBuild's answer for the input, running buf only
// the first time the input is asked for.
func bufBuildCached(tb testing.TB, importPaths, files []string) (*descriptorpb.FileDescriptorSet, error) {
	tb.Helper()
	key := strings.Join(importPaths, "\x00") + "\x01" + strings.Join(files, "\x00")
	bufBuilds.mu.Lock()
	if bufBuilds.sets == nil {
		bufBuilds.sets = make(map[string]*bufBuildResult)
	}
	r, ok := bufBuilds.sets[key]
	if !ok {
		r = new(bufBuildResult)
		bufBuilds.sets[key] = r
	}
	bufBuilds.mu.Unlock()
	r.once.Do(func() { r.set, r.err = bufBuild(importPaths, files) })
	return r.set, r.err
}

// bufBuild compiles files with buf in a temporary workspace whose modules are
// the import paths (symbolic links m0, m1, ...) and returns the file
// descriptor set buf writes, imports and source info included.
func bufBuild(importPaths, files []string) (*descriptorpb.FileDescriptorSet, error) {
	buf, err := filepath.Abs(bufPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(buf); err != nil {
		return nil, fmt.Errorf("buf is missing, run npm ci at the repository root: %w", err)
	}
	work, err := os.MkdirTemp("", "protoc-gen-corsgate-buf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	bufYAML := "version: v2\nmodules:\n"
	for i, dir := range importPaths {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("m%d", i)
		if err := os.Symlink(abs, filepath.Join(work, name)); err != nil {
			return nil, err
		}
		bufYAML += "  - path: " + name + "\n"
	}
	if err := os.WriteFile(filepath.Join(work, "buf.yaml"), []byte(bufYAML), 0o644); err != nil {
		return nil, err
	}
	args := []string{"build", "--as-file-descriptor-set", "-o", "out.binpb"}
	for _, f := range files {
		path, err := moduleFile(work, len(importPaths), f)
		if err != nil {
			return nil, err
		}
		args = append(args, "--path", path)
	}
	cmd := exec.Command(buf, args...)
	cmd.Dir = work
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compile %v: buf %s: %w\n%s", files, strings.Join(args, " "), err, stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(work, "out.binpb"))
	if err != nil {
		return nil, err
	}
	// Options stay unknown fields here, whatever the test binary links:
	// newRequest decodes them as the plugin would.
	set := &descriptorpb.FileDescriptorSet{}
	if err := (proto.UnmarshalOptions{Resolver: new(protoregistry.Types)}).Unmarshal(data, set); err != nil {
		return nil, fmt.Errorf("compile %v: buf's output: %w", files, err)
	}
	return set, nil
}

// moduleFile returns the workspace path (m<i>/file) of file in the first of
// the n modules under work that holds it, as protoc searches import paths.
func moduleFile(work string, n int, file string) (string, error) {
	for i := range n {
		path := fmt.Sprintf("m%d/%s", i, file)
		if _, err := os.Stat(filepath.Join(work, path)); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s is in none of the import paths", file)
}

// newRequest builds the request protoc would send, and decodes it as the
// plugin would receive it: with corsgate's option types linked (the options
// arrive parsed as extensions) or not (they arrive as unknown fields).
func newRequest(tb testing.TB, protos []*descriptorpb.FileDescriptorProto, generate []string, parameter string, linked bool) *pluginpb.CodeGeneratorRequest {
	tb.Helper()
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: generate,
		ProtoFile:      protos,
		Parameter:      proto.String(parameter),
	}
	b, err := proto.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	var resolver interface {
		protoregistry.ExtensionTypeResolver
		protoregistry.MessageTypeResolver
	} = protoregistry.GlobalTypes
	if !linked {
		resolver = new(protoregistry.Types) // knows no extension at all
	}
	decoded := &pluginpb.CodeGeneratorRequest{}
	if err := (proto.UnmarshalOptions{Resolver: resolver}).Unmarshal(b, decoded); err != nil {
		tb.Fatal(err)
	}
	return decoded
}

// responseFiles returns the generated files of a response by name, failing
// the test on a response error.
func responseFiles(tb testing.TB, resp *pluginpb.CodeGeneratorResponse) map[string]string {
	tb.Helper()
	if resp.Error != nil {
		tb.Fatalf("plugin error: %s", resp.GetError())
	}
	files := make(map[string]string)
	for _, f := range resp.GetFile() {
		if _, dup := files[f.GetName()]; dup {
			tb.Fatalf("file %s generated twice", f.GetName())
		}
		files[f.GetName()] = f.GetContent()
	}
	return files
}
