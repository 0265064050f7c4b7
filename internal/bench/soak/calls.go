package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// callResult is what one call ended with.
type callResult struct {
	err    error       // nil when the call succeeded and its payload was checked
	header http.Header // response headers, when the call got that far
	bad    string      // what was wrong with the payload or the response's form; "" when nothing
	// outcome, when set, is the outcome of a call that judged itself (a
	// preflight checks its own CORS headers).
	outcome string
	// sent is when a probe's request was written, from which the gateway
	// must keep its deadline; zero when unknown.
	sent time.Time
}

// kind is one type of call of the mix: a method in a protocol.
type kind struct {
	name   string
	weight int // share in the mix; 0: only dedicated callers run it
	// deadline is what the call announces to the gateway (a context
	// deadline, or a timeout header for probes).
	deadline time.Duration
	// slack is how much longer than deadline the client itself waits. It is
	// 0 for connect-go calls, whose context ends at the deadline; a probe
	// waits longer, so that it sees whether the gateway ends the call.
	slack time.Duration
	// cancelWithin bounds when a random client cancel fires after the start;
	// 0: this kind is never cancelled at random.
	cancelWithin time.Duration
	// proof is the outcome that shows the kind was exercised: "ok" (the
	// default, when empty), or "deadline_exceeded" for a probe.
	proof string
	run   func(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult
}

// mix is every kind of call the workers choose from, by weight, and the
// slow reader's kinds (weight 0).
var mix = []kind{
	{name: "unary " + protoGRPCWeb, weight: 10, deadline: 3 * time.Second, cancelWithin: 10 * time.Millisecond, run: unary(protoGRPCWeb)},
	{name: "unary " + protoConnect, weight: 10, deadline: 3 * time.Second, cancelWithin: 10 * time.Millisecond, run: unary(protoConnect)},
	{name: "unary " + protoConnectGET, weight: 5, deadline: 3 * time.Second, cancelWithin: 10 * time.Millisecond, run: unary(protoConnectGET)},
	{name: "unary " + protoGRPC, weight: 10, deadline: 3 * time.Second, cancelWithin: 10 * time.Millisecond, run: unary(protoGRPC)},
	{name: "unary grpc-web-text (raw)", weight: 5, deadline: 3 * time.Second, cancelWithin: 10 * time.Millisecond, run: rawGRPCWebText},
	{name: "unary connect-json (raw)", weight: 5, deadline: 3 * time.Second, cancelWithin: 10 * time.Millisecond, run: rawConnectJSON},
	{name: "preflight (raw)", weight: 3, deadline: 3 * time.Second, run: rawPreflight},
	{name: "server-stream " + protoGRPCWeb, weight: 5, deadline: 5 * time.Second, cancelWithin: 50 * time.Millisecond, run: serverStream(protoGRPCWeb)},
	{name: "server-stream " + protoConnect, weight: 5, deadline: 5 * time.Second, cancelWithin: 50 * time.Millisecond, run: serverStream(protoConnect)},
	{name: "server-stream " + protoGRPC, weight: 5, deadline: 5 * time.Second, cancelWithin: 50 * time.Millisecond, run: serverStream(protoGRPC)},
	{name: "client-stream " + protoGRPCWebH2C, weight: 4, deadline: 5 * time.Second, cancelWithin: 20 * time.Millisecond, run: clientStream(protoGRPCWebH2C)},
	{name: "client-stream " + protoConnectH2C, weight: 4, deadline: 5 * time.Second, cancelWithin: 20 * time.Millisecond, run: clientStream(protoConnectH2C)},
	{name: "client-stream " + protoGRPC, weight: 4, deadline: 5 * time.Second, cancelWithin: 20 * time.Millisecond, run: clientStream(protoGRPC)},
	{name: "bidi " + protoConnectH2C, weight: 4, deadline: 5 * time.Second, cancelWithin: 20 * time.Millisecond, run: bidi(protoConnectH2C)},
	{name: "bidi " + protoGRPC, weight: 4, deadline: 5 * time.Second, cancelWithin: 20 * time.Millisecond, run: bidi(protoGRPC)},
	{name: "deadline probe grpc-web (raw)", weight: 1, deadline: 500 * time.Millisecond, slack: 5 * time.Second, proof: "deadline_exceeded", run: probeGRPCWeb},
	{name: "deadline probe connect (raw)", weight: 1, deadline: 500 * time.Millisecond, slack: 5 * time.Second, proof: "deadline_exceeded", run: probeConnect},
	{name: "slow reader " + protoGRPCWeb, deadline: 15 * time.Second, cancelWithin: 3 * time.Second, run: slowReader(protoGRPCWeb)},
	{name: "slow reader " + protoConnectH2C, deadline: 15 * time.Second, cancelWithin: 3 * time.Second, run: slowReader(protoConnectH2C)},
}

// greeting is Greet's and GreetStream's answer to name (the backend never
// changes its greeting word: the soak does not call SetGreeting).
func greeting(name string) string { return "Hello, " + name + "!" }

// manyGreeting is GreetMany's answer to names.
func manyGreeting(names []string) string {
	if len(names) == 0 {
		return "Hello, nobody!"
	}
	return "Hello, " + strings.Join(names, " and ") + "!"
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomName(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

// unarySize picks a name length: mostly small, sometimes large (64 KiB,
// several HTTP/2 frames). URLs of Connect GET stay short.
func unarySize(rng *rand.Rand, get bool) int {
	sizes := []int{1, 16, 256, 4096, 65536}
	if get {
		sizes = sizes[:4]
	}
	return sizes[rng.IntN(len(sizes))]
}

// clip shortens s for a report.
func clip(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s…(%d bytes)", s[:80], len(s))
	}
	return s
}

func unary(proto string) func(context.Context, *clients, string, *rand.Rand) callResult {
	return func(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
		name := randomName(rng, unarySize(rng, proto == protoConnectGET))
		req := connect.NewRequest(&greetv1.GreetRequest{Name: name})
		req.Header().Set("Origin", origin)
		res, err := c.greet[proto].Greet(ctx, req)
		if err != nil {
			return callResult{err: err}
		}
		r := callResult{header: res.Header()}
		if got, want := res.Msg.GetGreeting(), greeting(name); got != want {
			r.bad = fmt.Sprintf("greeting %q, want %q", clip(got), clip(want))
		}
		return r
	}
}

func serverStream(proto string) func(context.Context, *clients, string, *rand.Rand) callResult {
	return func(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
		name := randomName(rng, 1+rng.IntN(64))
		count := 1 + rng.IntN(20)
		interval := 0
		if rng.IntN(2) == 0 {
			interval = 1 + rng.IntN(5)
		}
		return greetStream(ctx, c, proto, origin, name, count, interval, 0)
	}
}

// slowReader asks for a stream bigger than the flow-control windows between
// here and the backend (30 messages of 16 KiB) and reads one message every
// 100 ms, so that the gateway has to hold back the backend.
func slowReader(proto string) func(context.Context, *clients, string, *rand.Rand) callResult {
	return func(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
		return greetStream(ctx, c, proto, origin, randomName(rng, 16<<10), 30, 0, 100*time.Millisecond)
	}
}

func greetStream(ctx context.Context, c *clients, proto, origin, name string, count, intervalMs int, pause time.Duration) callResult {
	req := connect.NewRequest(&greetv1.GreetStreamRequest{Name: name, Count: int32(count), IntervalMs: int32(intervalMs)})
	req.Header().Set("Origin", origin)
	stream, err := c.greet[proto].GreetStream(ctx, req)
	if err != nil {
		return callResult{err: err}
	}
	defer stream.Close()
	want := greeting(name)
	n := 0
	for stream.Receive() {
		n++
		msg := stream.Msg()
		if msg.GetIndex() != int32(n) || msg.GetGreeting() != want {
			return callResult{header: stream.ResponseHeader(), bad: fmt.Sprintf("message %d: index %d, greeting %q; want greeting %q", n, msg.GetIndex(), clip(msg.GetGreeting()), clip(want))}
		}
		if pause > 0 {
			_ = sleep(ctx, pause) // when ctx ends, the next Receive fails
		}
	}
	r := callResult{header: stream.ResponseHeader(), err: stream.Err()}
	if r.err == nil && n != count {
		r.bad = fmt.Sprintf("%d messages, want %d", n, count)
	}
	return r
}

func clientStream(proto string) func(context.Context, *clients, string, *rand.Rand) callResult {
	return func(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
		stream := c.greet[proto].GreetMany(ctx)
		stream.RequestHeader().Set("Origin", origin)
		names := make([]string, rng.IntN(11))
		for i := range names {
			names[i] = randomName(rng, 1+rng.IntN(32))
		}
		for _, n := range names {
			if err := stream.Send(&greetv1.GreetManyRequest{Name: n}); err != nil {
				break // the call ended early; CloseAndReceive returns why
			}
		}
		res, err := stream.CloseAndReceive()
		if err != nil {
			return callResult{err: err}
		}
		r := callResult{header: res.Header()}
		if got, want := res.Msg.GetGreeting(), manyGreeting(names); got != want || res.Msg.GetCount() != int32(len(names)) {
			r.bad = fmt.Sprintf("greeting %q for %d names, want %q for %d", clip(got), res.Msg.GetCount(), clip(want), len(names))
		}
		return r
	}
}

// bidi sends lines one at a time and waits for each answer before the next,
// which only a full-duplex path carries.
func bidi(proto string) func(context.Context, *clients, string, *rand.Rand) callResult {
	return func(ctx context.Context, c *clients, origin string, rng *rand.Rand) callResult {
		stream := c.greet[proto].Chat(ctx)
		stream.RequestHeader().Set("Origin", origin)
		defer func() {
			_ = stream.CloseRequest()
			_ = stream.CloseResponse()
		}()
		for i := range 1 + rng.IntN(10) {
			text := fmt.Sprintf("line %d %s", i, randomName(rng, 1+rng.IntN(32)))
			if err := stream.Send(&greetv1.ChatRequest{Text: text}); err != nil && !errors.Is(err, io.EOF) {
				return callResult{err: err}
			} // on io.EOF the server ended the call: Receive returns why
			msg, err := stream.Receive()
			if err != nil {
				return callResult{err: err, header: stream.ResponseHeader()}
			}
			if got, want := msg.GetText(), "you said: "+text; got != want {
				return callResult{header: stream.ResponseHeader(), bad: fmt.Sprintf("answer %q, want %q", got, want)}
			}
		}
		if err := stream.CloseRequest(); err != nil {
			return callResult{err: err, header: stream.ResponseHeader()}
		}
		r := callResult{header: stream.ResponseHeader()}
		msg, err := stream.Receive()
		switch {
		case err == nil:
			r.bad = fmt.Sprintf("answer %q after the client closed", msg.GetText())
		case !errors.Is(err, io.EOF):
			r.err = err
		}
		return r
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
