package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// summary is everything a run found, for the report and the test.
type summary struct {
	cfg          config
	seed         uint64
	calls        *tally
	loadTime     time.Duration
	starts       int // backend incarnations
	kills        int
	baseline     runtimeStats
	after        runtimeStats
	goroutineMax uint64 // the limit after is held to
	heapMax      uint64
	sawGC        bool // a GC completed before after was read
	gatewayLogs  scanned
	backendLogs  scanned
	gatewayExit  string
	outages      []outage
	unfiled      int
	unfiledCall  string
}

func (s *summary) violations() int { return s.calls.violations() }

// soak is one run in progress.
type soak struct {
	cfg     config
	log     *slog.Logger
	backend *backend
	gateway *gateway
	clients *clients
	calls   *tally
	fatal   atomic.Pointer[error] // a setup failure during the run (a restart that failed)

	mu      sync.Mutex
	outages []outage // one per kill, in order
	// unfiled counts calls failing with unavailable before the first kill.
	unfiled     int
	unfiledCall string
}

// run starts the backend and the gateway, warms up, takes the baseline,
// runs load and chaos for cfg.duration, then checks that the gateway comes
// back to its baseline and shuts down cleanly. It writes the report to out.
// An error means the soak could not run; broken invariants are in the
// summary.
func run(ctx context.Context, cfg config, out io.Writer, log *slog.Logger) (*summary, error) {
	if cfg.seed == 0 {
		cfg.seed = rand.Uint64()
	}
	tmp, err := os.MkdirTemp("", "corsgate-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := cfg.corsgateBin
	if bin == "" {
		if bin, err = buildCorsgate(ctx, tmp, log); err != nil {
			return nil, err
		}
	}
	s := &soak{cfg: cfg, log: log, calls: newTally()}
	if s.backend, err = newBackend(); err != nil {
		return nil, err
	}
	if err := s.backend.start(ctx); err != nil {
		return nil, err
	}
	defer s.backend.stop()
	if s.gateway, err = startGateway(ctx, bin, s.backend.addr, cfg.strict); err != nil {
		return nil, err
	}
	defer s.gateway.p.kill() // a no-op once stopped
	s.clients = newClients(s.gateway.addr, 2*(cfg.workers+cfg.slowReaders))
	log.Info("soak started", "gateway", s.gateway.addr, "backend", s.backend.addr, "duration", cfg.duration, "kill_every", cfg.killEvery, "seed", cfg.seed)

	// Warmup: the same load without chaos, then idle, so that the baseline
	// is an idle gateway that has served every kind of call.
	warm := newTally()
	s.load(ctx, cfg.warmup, warm, false)
	if warm.violations() > 0 {
		return nil, fmt.Errorf("the warmup, without chaos, broke invariants: %s", firstExamples(warm))
	}
	sum := &summary{cfg: cfg, seed: cfg.seed, calls: s.calls}
	if sum.baseline, _, err = s.idleStats(ctx, nil, 15*time.Second); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	sum.goroutineMax = sum.baseline.goroutines + max(sum.baseline.goroutines/10, goroutineSlack)
	sum.heapMax = sum.baseline.heapAlloc + max(sum.baseline.heapAlloc/10, heapSlack)
	log.Info("baseline", "goroutines", sum.baseline.goroutines, "heap_alloc", sum.baseline.heapAlloc, "heap_inuse", sum.baseline.heapInuse)

	start := time.Now()
	s.load(ctx, cfg.duration, s.calls, true)
	sum.loadTime = time.Since(start)
	if p := s.fatal.Load(); p != nil {
		return nil, *p
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sum.starts, sum.kills = s.backend.counts()
	s.mu.Lock()
	sum.outages = append([]outage(nil), s.outages...)
	sum.unfiled, sum.unfiledCall = s.unfiled, s.unfiledCall
	s.mu.Unlock()
	if exit := s.gateway.p.exited(); exit != nil {
		s.calls.invariant(vGatewayDied, exit.Error())
	} else {
		s.checkRecovery(ctx)
		var within bool
		sum.after, within, err = s.idleStats(ctx, sum, cfg.settle)
		sum.sawGC = sum.after.gcCount > 0
		switch {
		case err != nil:
			return nil, fmt.Errorf("after the load: %w", err)
		case !within && sum.after.goroutines > sum.goroutineMax:
			s.calls.invariant(vGoroutines, fmt.Sprintf("%d goroutines %s after the load, baseline %d, limit %d", sum.after.goroutines, cfg.settle, sum.baseline.goroutines, sum.goroutineMax))
		}
		if !within && sum.after.heapAlloc > sum.heapMax {
			s.calls.invariant(vHeap, fmt.Sprintf("live heap %d B %s after the load, baseline %d B, limit %d B", sum.after.heapAlloc, cfg.settle, sum.baseline.heapAlloc, sum.heapMax))
		}
		clean, err := s.gateway.p.stop(10 * time.Second)
		switch {
		case !clean:
			sum.gatewayExit = "did not exit within 10 s of SIGTERM"
		case err != nil:
			sum.gatewayExit = err.Error()
		default:
			sum.gatewayExit = "exited 0 on SIGTERM"
		}
		if !clean || err != nil {
			s.calls.invariant(vGatewayClose, sum.gatewayExit)
		}
	}
	s.backend.stop()
	sum.gatewayLogs = s.gateway.logs.result()
	sum.backendLogs = s.backend.logs.result()
	for name, l := range map[string]scanned{"gateway": sum.gatewayLogs, "backend": sum.backendLogs} {
		if l.panics > 0 {
			s.calls.invariant(vPanic, fmt.Sprintf("%s: %d panics; the first:\n%s", name, l.panics, joinLines(l.trace)))
		}
	}
	writeReport(out, sum)
	return sum, nil
}

// Absolute slack of the return-to-baseline checks, for baselines so small
// that 10 % of them is less than noise: an idle gateway runs a dozen or two
// goroutines and holds a few MiB of live heap, and one /metrics scrape
// allocates about 100 KiB.
const (
	goroutineSlack = 3
	heapSlack      = 512 << 10
)

// load runs the workers, the slow readers and, when chaos is set, the
// backend kills for d. Calls in flight when d ends run to their end.
func (s *soak) load(ctx context.Context, d time.Duration, t *tally, chaos bool) {
	loadCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	var wg sync.WaitGroup
	var weighted []kind
	var slow []kind
	for _, k := range mix {
		for range k.weight {
			weighted = append(weighted, k)
		}
		if k.weight == 0 {
			slow = append(slow, k)
		}
	}
	for i := range s.cfg.workers + s.cfg.slowReaders {
		rng := rand.New(rand.NewPCG(s.cfg.seed, uint64(i)))
		wg.Go(func() {
			for n := 0; loadCtx.Err() == nil; n++ {
				var k kind
				if i < s.cfg.workers {
					k = weighted[rng.IntN(len(weighted))]
				} else {
					k = slow[(i+n)%len(slow)]
				}
				s.call(ctx, k, rng, t)
			}
		})
	}
	if chaos {
		wg.Go(func() { s.chaos(loadCtx, stop) })
	}
	wg.Wait()
}

// call makes one call of kind k and records it in t. Its context does not
// end with the load, only with ctx (an interrupt): calls in flight finish.
func (s *soak) call(ctx context.Context, k kind, rng *rand.Rand, t *tally) {
	origin := allowedOrigin
	if rng.Float64() < s.cfg.foreignRate {
		origin = foreignOrigin
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.deadline+k.slack)
	defer cancel()
	callCtx = context.WithValue(callCtx, announcedKey{}, k.deadline)
	if k.cancelWithin > 0 && rng.Float64() < s.cfg.cancelRate {
		timer := time.AfterFunc(time.Duration(rng.Int64N(int64(k.cancelWithin))), cancel)
		defer timer.Stop()
	}
	start := time.Now()
	r := k.run(callCtx, s.clients, origin, rng)
	end := time.Now()
	took := end.Sub(start)
	outcome, class, detail := judge(r, origin == allowedOrigin, s.cfg.strict, callCtx.Err() != nil)
	if outcome == connect.CodeUnavailable.String() && t == s.calls {
		s.noteUnavailable(start, end, fmt.Sprintf("%s: %v", k.name, r.err))
	}
	var classes, details []string
	if class != "" {
		classes, details = append(classes, class), append(details, detail)
	}
	overrun := took - k.deadline
	if k.slack > 0 && !r.sent.IsZero() {
		overrun = end.Sub(r.sent) - k.deadline // the gateway's part
	}
	if overrun > maxDeadlineExtra {
		classes = append(classes, vOverrun)
		details = append(details, fmt.Sprintf("took %s, %s after the request was sent, with a deadline of %s (%s)", took.Round(time.Millisecond), (k.deadline+overrun).Round(time.Millisecond), k.deadline, outcome))
	}
	t.call(k.name, outcome, r.err, took, overrun, classes, details)
	if outcome != outcomeOK && outcome != outcomeRefused && outcome != outcomeForeign {
		// As a client retrying would; and so that callers do not spin
		// while the backend is down.
		_ = sleep(ctx, failPause)
	}
}

// failPause is how long a caller waits after a failed call.
const failPause = 20 * time.Millisecond

// checkRecovery requires a good Greet in each of gRPC-Web, Connect and gRPC
// within 10 s of the end of the chaos (the backend was restarted last).
func (s *soak) checkRecovery(ctx context.Context) {
	for _, p := range []string{protoGRPCWeb, protoConnect, protoGRPC} {
		deadline := time.Now().Add(10 * time.Second)
		var err error
		for {
			callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			req := connect.NewRequest(&greetv1.GreetRequest{Name: "recovery"})
			req.Header().Set("Origin", allowedOrigin)
			var res *connect.Response[greetv1.GreetResponse]
			res, err = s.clients.greet[p].Greet(callCtx, req)
			cancel()
			if err == nil && res.Msg.GetGreeting() != greeting("recovery") {
				err = fmt.Errorf("greeting %q", res.Msg.GetGreeting())
			}
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			s.calls.invariant(vRecovery, fmt.Sprintf("%s Greet 10 s after the chaos: %v", p, err))
		}
	}
}

// idleStats closes the clients' idle connections and reads the gateway's
// runtime gauges once it is idle and has completed a GC cycle since (two
// when sum is nil, for the baseline, as the first may have started under
// load). The scrapes themselves allocate a little, which brings the next GC
// in an idle gateway within seconds instead of the runtime's two minutes.
// With sum, it polls until goroutines and heap are within sum's limits or
// timeout passes, and reports whether they got there. gcCount in the result
// is the cycles seen, 0 when none.
func (s *soak) idleStats(ctx context.Context, sum *summary, timeout time.Duration) (runtimeStats, bool, error) {
	s.clients.closeIdle()
	first, err := s.gateway.readRuntime(ctx)
	if err != nil {
		return runtimeStats{}, false, err
	}
	cycles := uint64(1)
	if sum == nil {
		cycles = 2
	}
	deadline := time.Now().Add(timeout)
	for {
		time.Sleep(50 * time.Millisecond)
		s.clients.closeIdle()
		cur, err := s.gateway.readRuntime(ctx)
		if err != nil {
			return runtimeStats{}, false, err
		}
		gcs := cur.gcCount - first.gcCount
		done := gcs >= cycles
		within := sum != nil && cur.goroutines <= sum.goroutineMax && cur.heapAlloc <= sum.heapMax
		if sum != nil {
			done = done && within
		}
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			cur.gcCount = gcs
			if sum == nil && gcs < cycles {
				return cur, false, errors.New("no GC cycle in the idle gateway in time")
			}
			return cur, within, ctx.Err()
		}
	}
}
