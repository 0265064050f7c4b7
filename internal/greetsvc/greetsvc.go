// Package greetsvc implements greet.v1.GreetService, the example service of
// corsgate's demo, tests and benchmarks, once for connect-go ([Connect]) and
// once for grpc-go ([GRPC]). Both share one [Greeter], so the drop-in demo and
// the gRPC backend behind the gateway answer alike.
package greetsvc

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

const (
	// Version is the value of the x-greet-version response header.
	Version = "1"
	// TrailerValue is the value of the x-greet-trailer trailer.
	TrailerValue = "greeted"
	// HeaderVersion is the response header Greet sets.
	HeaderVersion = "X-Greet-Version"
	// TrailerName is the trailer Greet sets.
	TrailerName = "X-Greet-Trailer"

	defaultGreeting = "Hello"
	maxStreamCount  = 100000
	maxIntervalMs   = 10000
)

// Call is what the service saw of one call: tests use it to prove what reached
// the server (the HTTP method, the request headers).
type Call struct {
	// Procedure is the method's name, for example "Greet".
	Procedure string
	// HTTPMethod is "GET" or "POST" where the transport tells it, else "".
	HTTPMethod string
	// Header holds the request headers as the server saw them.
	Header http.Header
}

// Greeter holds the service's state: the greeting word and, when Record is
// set, a hook told of every call. The zero value is ready to use; it is safe
// for concurrent use.
type Greeter struct {
	// Record, when not nil, is called at the start of every call. It must be
	// safe for concurrent use.
	Record func(Call)

	mu       sync.Mutex
	greeting string
}

func (g *Greeter) record(c Call) {
	if g.Record != nil {
		g.Record(c)
	}
}

func (g *Greeter) word() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.greeting == "" {
		return defaultGreeting
	}
	return g.greeting
}

func (g *Greeter) setWord(w string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.greeting
	if prev == "" {
		prev = defaultGreeting
	}
	g.greeting = w
	return prev
}

func (g *Greeter) greet(name string) string {
	return fmt.Sprintf("%s, %s!", g.word(), name)
}

// errDetail is the detail attached to the INVALID_ARGUMENT of an empty name.
func errDetail() *greetv1.GreetErrorDetail {
	return &greetv1.GreetErrorDetail{Field: "name", Reason: "name must not be empty"}
}

const emptyNameMessage = "name is required"

func streamPlan(req *greetv1.GreetStreamRequest) (count int, interval time.Duration, err error) {
	count = int(req.GetCount())
	switch {
	case count == 0:
		count = 3
	case count < 0 || count > maxStreamCount:
		return 0, 0, fmt.Errorf("count must be between 0 and %d, got %d", maxStreamCount, count)
	}
	ms := req.GetIntervalMs()
	if ms < 0 || ms > maxIntervalMs {
		return 0, 0, fmt.Errorf("interval_ms must be between 0 and %d, got %d", maxIntervalMs, ms)
	}
	return count, time.Duration(ms) * time.Millisecond, nil
}

func manyGreeting(word string, names []string) string {
	if len(names) == 0 {
		return word + ", nobody!"
	}
	return fmt.Sprintf("%s, %s!", word, strings.Join(names, " and "))
}
