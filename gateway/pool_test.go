package gateway_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// TestPooledRequestState runs many calls at once in every protocol, with
// request bodies on both sides of the pooled buffer size and some calls
// canceled in flight, each with metadata headers of its own (one on every
// other call only). The gateway
// hands request body buffers and backend header maps back to pools after
// each call: every answer must be its own call's, and the backend must see
// each call's header and no other's.
func TestPooledRequestState(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g, url := startGateway(t, startBackend(t, rec))
	waitReady(t, g)
	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := newGreetClient(t, url, k)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 2))
					for i := range 40 {
						id := fmt.Sprintf("%s-%d-%d", k.name, g, i)
						name := id + "-" + strings.Repeat("p", rng.IntN(6000))
						req := connect.NewRequest(&greetv1.GreetRequest{Name: name})
						req.Header().Set("X-Call-Id", id)
						if i%2 == 1 {
							req.Header().Set("X-Odd", id)
						}
						timeout := 10 * time.Second
						if i%5 == 4 {
							timeout = time.Duration(rng.IntN(2000)) * time.Microsecond
						}
						ctx, cancel := context.WithTimeout(context.Background(), timeout)
						res, err := client.Greet(ctx, req)
						cancel()
						switch {
						case err != nil && i%5 == 4:
							// Canceled in flight: its buffers are not reused.
						case err != nil:
							errs <- fmt.Errorf("call %s: %w", id, err)
							return
						case res.Msg.GetGreeting() != "Hello, "+name+"!":
							errs <- fmt.Errorf("call %s got %.50q…", id, res.Msg.GetGreeting())
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
	t.Cleanup(func() {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, c := range rec.calls {
			if ids := c.Header.Values("X-Call-Id"); len(ids) != 1 {
				t.Errorf("the backend saw X-Call-Id %q on one call; want exactly its own", ids)
			}
			if odd := c.Header.Values("X-Odd"); len(odd) > 0 && (len(odd) != 1 || odd[0] != c.Header.Get("X-Call-Id")) {
				t.Errorf("call %s: the backend saw X-Odd %q, another call's", c.Header.Get("X-Call-Id"), odd)
			}
		}
		if len(rec.calls) == 0 {
			t.Error("the backend saw no call")
		}
	})
}

// TestPooledStreamBuffers runs many server streams at once in every
// protocol, some bursting, some waiting between messages, with messages on
// both sides of the copy buffer's size. A stream hands its copy buffer and
// the backend client's receive buffer back whenever it waits for the next
// message: every message must be its own stream's, whole and in order.
func TestPooledStreamBuffers(t *testing.T) {
	t.Parallel()
	g, url := startGateway(t, startBackend(t, &recorder{}))
	waitReady(t, g)
	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := newGreetClient(t, url, k)
			var wg sync.WaitGroup
			errs := make(chan error, 12)
			for s := range 12 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(s), 3))
					name := fmt.Sprintf("%s-%d-", k.name, s) + strings.Repeat(string(rune('a'+s)), rng.IntN(40000))
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{
						Name: name, Count: 30, IntervalMs: int32(s % 2 * 2),
					}))
					if err != nil {
						errs <- err
						return
					}
					defer stream.Close()
					want := int32(1)
					for stream.Receive() {
						if m := stream.Msg(); m.GetIndex() != want || m.GetGreeting() != "Hello, "+name+"!" {
							errs <- fmt.Errorf("stream %d message %d: got index %d, %.40q…", s, want, m.GetIndex(), m.GetGreeting())
							return
						}
						want++
					}
					if err := stream.Err(); err != nil || want != 31 {
						errs <- fmt.Errorf("stream %d ended after %d messages: %v", s, want-1, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
