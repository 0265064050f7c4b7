package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/corsgate/corsgate/internal/testutil"
)

// Readers of a target's own figures: the heap in use (memory case) and the
// heap allocations (unary case), from expvar in the bench's children and
// from Prometheus pages in corsgate and grpcwebproxy.

// expvarHeap reads runtime.MemStats.HeapInuse from a child's /debug/vars.
func expvarHeap(debugAddr string) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		body, err := testutil.HTTPGet(ctx, "http://"+debugAddr+"/debug/vars")
		if err != nil {
			return 0, err
		}
		var vars struct {
			Memstats struct{ HeapInuse uint64 } `json:"memstats"`
		}
		if err := json.Unmarshal(body, &vars); err != nil {
			return 0, fmt.Errorf("decode /debug/vars: %w", err)
		}
		return vars.Memstats.HeapInuse, nil
	}
}

// promHeap reads go_memstats_heap_inuse_bytes from a Prometheus text page.
func promHeap(url string) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		body, err := testutil.HTTPGet(ctx, url)
		if err != nil {
			return 0, err
		}
		return parsePromGauge(string(body), "go_memstats_heap_inuse_bytes")
	}
}

func parsePromGauge(page, name string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", name, err)
		}
		return uint64(v), nil
	}
	return 0, fmt.Errorf("%s not among the metrics", name)
}

// allocCount is a process's heap allocations since it started: runtime/metrics'
// /gc/heap/allocs:bytes and /gc/heap/allocs:objects.
type allocCount struct {
	Bytes   uint64 `json:"bytes"`
	Objects uint64 `json:"objects"`
}

// readHeapAllocs is the children's expvar heapAllocs: an [allocCount].
func readHeapAllocs() any {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	var c allocCount
	if s[0].Value.Kind() == metrics.KindUint64 && s[1].Value.Kind() == metrics.KindUint64 {
		c = allocCount{Bytes: s[0].Value.Uint64(), Objects: s[1].Value.Uint64()}
	}
	return c
}

// allocReader reads a target process's [allocCount].
type allocReader func(ctx context.Context) (allocCount, error)

// expvarAllocs reads heapAllocs from a child's /debug/vars.
func expvarAllocs(debugAddr string) allocReader {
	return func(ctx context.Context) (allocCount, error) {
		body, err := testutil.HTTPGet(ctx, "http://"+debugAddr+"/debug/vars")
		if err != nil {
			return allocCount{}, err
		}
		var vars struct {
			HeapAllocs *allocCount `json:"heapAllocs"`
		}
		if err := json.Unmarshal(body, &vars); err != nil {
			return allocCount{}, fmt.Errorf("decode /debug/vars: %w", err)
		}
		if vars.HeapAllocs == nil || vars.HeapAllocs.Bytes == 0 {
			return allocCount{}, fmt.Errorf("no heapAllocs in /debug/vars")
		}
		return *vars.HeapAllocs, nil
	}
}

// promAllocs reads the counters named bytes and objects from a Prometheus
// text page.
func promAllocs(url, bytes, objects string) allocReader {
	return func(ctx context.Context) (allocCount, error) {
		body, err := testutil.HTTPGet(ctx, url)
		if err != nil {
			return allocCount{}, err
		}
		b, err := parsePromGauge(string(body), bytes)
		if err != nil {
			return allocCount{}, err
		}
		o, err := parsePromGauge(string(body), objects)
		if err != nil {
			return allocCount{}, err
		}
		return allocCount{Bytes: b, Objects: o}, nil
	}
}

// allocWindow measures the allocations of a window of load. Reading the
// counters allocates in the target too (a Prometheus page, a JSON
// document), so start reads them twice and the second read's cost is taken
// off the window's.
type allocWindow struct {
	read   allocReader
	a1, a2 allocCount
}

func startAllocs(ctx context.Context, read allocReader) (allocWindow, error) {
	w := allocWindow{read: read}
	var err error
	if w.a1, err = read(ctx); err != nil {
		return w, err
	}
	w.a2, err = read(ctx)
	return w, err
}

// end returns what the target allocated since start, less one read.
func (w allocWindow) end(ctx context.Context) (allocCount, error) {
	b, err := w.read(ctx)
	if err != nil {
		return allocCount{}, err
	}
	sub := func(b, a2, a1 uint64) uint64 {
		read := a2 - a1
		if b < a2+read {
			return 0
		}
		return b - a2 - read
	}
	return allocCount{Bytes: sub(b.Bytes, w.a2.Bytes, w.a1.Bytes), Objects: sub(b.Objects, w.a2.Objects, w.a1.Objects)}, nil
}
