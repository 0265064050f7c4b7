package h2client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// The receive buffers are pooled (recvBufPool): these tests catch a buffer
// handed back while bytes in it are unread, or shared by two streams.

// TestRecvBufferKeptUntilRead leaves a whole answer unread while many other
// calls come and go on the same connection, taking buffers from the pool:
// the answer must read back intact.
func TestRecvBufferKeptUntilRead(t *testing.T) {
	t.Parallel()
	addr := h2Backend(t)
	tr := newTestTransport(t, Config{Authority: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func(name string) *http.Response {
		t.Helper()
		resp, err := tr.Call(ctx, h2Request(ctx, addr, "Greet", NewBytesBody(h2Frame(t, &greetv1.GreetRequest{Name: name}))), true)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	kept := strings.Repeat("k", 1000)
	unread := call(kept)
	// Whole: handed over at the end, so every byte of the answer waits in
	// the stream's buffer now.
	for i := range 50 {
		other := strings.Repeat(string(rune('a'+i%26)), 1000)
		msgs, status := h2Messages(t, call(other))
		if status != "0" || len(msgs) != 1 || greeting(t, msgs[0]) != "Hello, "+other+"!" {
			t.Fatalf("call %d: status %q, %d messages", i, status, len(msgs))
		}
	}
	msgs, status := h2Messages(t, unread)
	if status != "0" || len(msgs) != 1 {
		t.Fatalf("the kept answer: status %q, %d messages", status, len(msgs))
	}
	if got := greeting(t, msgs[0]); got != "Hello, "+kept+"!" {
		t.Errorf("the kept answer changed while it waited: %.40q…", got)
	}
}

// TestRecvBuffersConcurrent runs many calls at once, answers from a few
// bytes to past the pooled size, unary and streamed, each read in chunks of
// random sizes: every answer must be the one its call asked for.
func TestRecvBuffersConcurrent(t *testing.T) {
	t.Parallel()
	addr := h2Backend(t)
	tr := newTestTransport(t, Config{Authority: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 60 {
				name := fmt.Sprintf("%d-%d-%s", g, i, strings.Repeat("x", rng.IntN(3*recvBufSize)))
				method, req := "Greet", &greetv1.GreetRequest{Name: name}
				want := []string{"Hello, " + name + "!"}
				var body []byte
				if i%3 == 0 {
					method = "GreetStream"
					body = h2Frame(t, &greetv1.GreetStreamRequest{Name: name, Count: 3})
					want = []string{want[0], want[0], want[0]}
				} else {
					body = h2Frame(t, req)
				}
				resp, err := tr.Call(ctx, h2Request(ctx, addr, method, NewBytesBody(body)), i%2 == 0)
				if err != nil {
					errs <- err
					return
				}
				data, err := readChunked(resp.Body, rng)
				_ = resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if err := checkGreetings(data, want); err != nil {
					errs <- fmt.Errorf("caller %d call %d (%s): %w", g, i, method, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// readChunked reads r to its end in reads of 1 to 700 bytes.
func readChunked(r io.Reader, rng *rand.Rand) ([]byte, error) {
	var out bytes.Buffer
	p := make([]byte, 700)
	for {
		n, err := r.Read(p[:1+rng.IntN(len(p))])
		out.Write(p[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// checkGreetings checks that data is the gRPC frames of want's greetings.
func checkGreetings(data []byte, want []string) error {
	for i, w := range want {
		if len(data) < 5 {
			return fmt.Errorf("message %d missing", i)
		}
		n := int(data[1])<<24 | int(data[2])<<16 | int(data[3])<<8 | int(data[4])
		if len(data) < 5+n {
			return fmt.Errorf("message %d cut", i)
		}
		// A GreetStreamResponse's greeting is field 1, as a GreetResponse's.
		var res greetv1.GreetStreamResponse
		if err := proto.Unmarshal(data[5:5+n], &res); err != nil {
			return err
		}
		if res.GetGreeting() != w {
			return fmt.Errorf("message %d is %.60q…, want %.60q…", i, res.GetGreeting(), w)
		}
		data = data[5+n:]
	}
	if len(data) != 0 {
		return fmt.Errorf("%d bytes after the messages", len(data))
	}
	return nil
}
