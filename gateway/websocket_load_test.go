package gateway_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// wsMaxBytesPerStream bounds heap plus goroutine stacks per open bidi
// stream in TestWebSocketThousandBidi. The figure counts the whole process:
// the test's WebSocket client and greetd's grpc-go stream too, not only the
// gateway.
const wsMaxBytesPerStream = 160 << 10

// wsMemInUse is the heap in use plus the goroutine stacks, after GC.
func wsMemInUse() (heap, stacks uint64) {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// TestWebSocketThousandBidi holds 1 000 Chat streams open at once over
// WebSockets, each having exchanged a message, measures the memory per open
// stream, then ends them all and checks every trailer. Not parallel: memory
// figures count the whole process.
func TestWebSocketThousandBidi(t *testing.T) {
	if testing.Short() {
		t.Skip("1 000 streams")
	}
	const streams = 1000
	g, url := startWSGateway(t, startBackend(t, nil), gateway.WebSocketConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// Warm up the pools and the backend connection with one stream.
	if r := wsCall(t, url, greetPath+"Chat", nil, &greetv1.ChatRequest{Text: "warm"}); r.status() != "0" {
		t.Fatalf("warm-up: %v", r)
	}
	baseHeap, baseStacks := wsMemInUse()
	baseG := runtime.NumGoroutine()

	clients := make([]*wsClient, streams)
	errs := make(chan error, streams)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, _, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			if err := c.send(&greetv1.ChatRequest{Text: fmt.Sprint(i)}); err != nil {
				errs <- err
				return
			}
			for range 2 { // the header frame, the answer
				if _, _, err := c.next(); err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	openTook := time.Since(start)
	if n := g.WebSocketStreams(); n != streams {
		t.Fatalf("%d streams open, want %d", n, streams)
	}
	heap, stacks := wsMemInUse()
	goroutines := runtime.NumGoroutine() - baseG
	perStream := (int64(heap+stacks) - int64(baseHeap+baseStacks)) / streams
	t.Logf("%d bidi streams opened in %v: heap %d KiB -> %d KiB, stacks %d KiB -> %d KiB; %d bytes per open stream "+
		"(heap %d + stacks %d, client and backend included); %d goroutines per stream",
		streams, openTook, baseHeap>>10, heap>>10, baseStacks>>10, stacks>>10, perStream,
		(int64(heap)-int64(baseHeap))/streams, (int64(stacks)-int64(baseStacks))/streams, goroutines/streams)
	if perStream > wsMaxBytesPerStream {
		t.Errorf("%d bytes per open stream, want at most %d", perStream, wsMaxBytesPerStream)
	}

	var done sync.WaitGroup
	failed := make(chan error, streams)
	for i, c := range clients {
		done.Add(1)
		go func() {
			defer done.Done()
			if err := c.finish(); err != nil {
				failed <- err
				return
			}
			r, err := c.readAll()
			if err != nil || r.headers["grpc-status"] != "0" {
				failed <- fmt.Errorf("stream %d: %v, %v", i, r, err)
			}
		}()
	}
	done.Wait()
	close(failed)
	for err := range failed {
		t.Fatal(err)
	}
	waitFor(t, "every stream to close", func() bool { return g.WebSocketStreams() == 0 })
}
