package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// LoadDescriptorFile reads a buf image (`buf build -o image.binpb`) or a
// binary FileDescriptorSet (`protoc --descriptor_set_out
// --include_imports`) and resolves it. Every imported file must be in the
// set. Options, custom ones included, keep their bytes, so the CORS rules
// in corsgate's options are found even when their Go types are not linked.
func LoadDescriptorFile(path string) (*protoregistry.Files, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: descriptors: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	// A buf image is a FileDescriptorSet with extra fields per file; they are
	// kept as unknown fields and ignored.
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("gateway: descriptors %s: not a buf image or FileDescriptorSet: %w", path, err)
	}
	if len(set.GetFile()) == 0 {
		return nil, fmt.Errorf("gateway: descriptors %s: no files in the set", path)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("gateway: descriptors %s: %w (build it with imports: buf build -o FILE, or protoc --include_imports)", path, err)
	}
	return files, nil
}

// reflectFiles asks the backend's server reflection for every service and
// the files they need.
func (g *Gateway) reflectFiles(ctx context.Context) (*protoregistry.Files, error) {
	client := grpcreflect.NewClient(g.client, g.baseURL, connect.WithGRPC())
	stream := client.NewStream(ctx)
	defer func() { _, _ = stream.Close() }()
	names, err := stream.ListServices()
	if err != nil {
		return nil, fmt.Errorf("gateway: reflection on %s: %w", g.authority, err)
	}
	byName := map[string]*descriptorpb.FileDescriptorProto{}
	for _, name := range names {
		fds, err := stream.FileContainingSymbol(name)
		if err != nil {
			return nil, fmt.Errorf("gateway: reflection on %s: service %s: %w", g.authority, name, err)
		}
		for _, fd := range fds {
			byName[fd.GetName()] = fd
		}
	}
	// Servers send each file once per stream; fetch any import still missing.
	for {
		var missing []string
		for _, fd := range byName {
			for _, dep := range fd.GetDependency() {
				if _, ok := byName[dep]; !ok {
					missing = append(missing, dep)
				}
			}
		}
		if len(missing) == 0 {
			break
		}
		for _, dep := range missing {
			if _, ok := byName[dep]; ok {
				continue
			}
			fds, err := stream.FileByFilename(dep)
			if err != nil {
				return nil, fmt.Errorf("gateway: reflection on %s: file %s: %w", g.authority, dep, err)
			}
			for _, fd := range fds {
				byName[fd.GetName()] = fd
			}
			if _, ok := byName[dep]; !ok {
				return nil, fmt.Errorf("gateway: reflection on %s: file %s not sent", g.authority, dep)
			}
		}
	}
	set := &descriptorpb.FileDescriptorSet{File: make([]*descriptorpb.FileDescriptorProto, 0, len(byName))}
	for _, fd := range byName {
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("gateway: reflection on %s: %w", g.authority, err)
	}
	return files, nil
}

// refresher loads descriptors by reflection: quickly retried until the
// first success, then every interval and whenever kicked.
func (g *Gateway) refresher() {
	defer close(g.done)
	backoff := 50 * time.Millisecond
	const maxBackoff = 5 * time.Second
	var timer *time.Timer
	for {
		err := g.refreshOnce()
		var wait time.Duration
		switch {
		case err == nil:
			backoff = 50 * time.Millisecond
			wait = g.interval
		case g.ctx.Err() != nil:
			return
		default:
			loaded := g.state.Load().loaded
			if loaded {
				g.log.Warn("gateway: reflection refresh failed; keeping the last descriptors", "backend", g.authority, "error", err)
			} else {
				g.log.Debug("gateway: waiting for the backend's reflection", "backend", g.authority, "error", err)
			}
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
		var tick <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tick = timer.C
		}
		select {
		case <-g.ctx.Done():
			return
		case <-g.kick:
		case <-tick:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (g *Gateway) refreshOnce() error {
	ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
	defer cancel()
	files, err := g.reflectFiles(ctx)
	if err != nil {
		return err
	}
	return g.install(files)
}

// kickRefresh asks the refresher to reflect soon, at most once a second:
// called when a request names an unknown procedure or the backend is
// unreachable, since the backend may have restarted with other services.
func (g *Gateway) kickRefresh() {
	if !g.reflect {
		return
	}
	now := time.Now().UnixNano()
	last := g.lastKick.Load()
	if now-last < int64(time.Second) || !g.lastKick.CompareAndSwap(last, now) {
		return
	}
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// errNoDescriptors is what calls get before the first descriptors arrive.
var errNoDescriptors = errors.New("no descriptors from the backend yet")
