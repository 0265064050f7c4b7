package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// unaryKey names one cell of the unary table.
type unaryKey struct {
	protocol    string
	concurrency int
	target      string
}

// unaryResult accumulates one cell over the rounds.
type unaryResult struct {
	calls    int64
	errors   int64
	firstErr string
	elapsed  time.Duration   // measured wall time, all rounds
	cpu      time.Duration   // target process CPU in the measured windows
	rates    []float64       // calls/s of each round
	latency  []time.Duration // every measured call
	peakRSS  uint64          // max VmHWM over the rounds
	peakNote string          // set when the peak could not be reset per cell
}

func (r *unaryResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.calls) / r.elapsed.Seconds()
}

// cpuPer returns the target's CPU seconds per n calls.
func (r *unaryResult) cpuPer(n float64) float64 {
	if r.calls == 0 {
		return 0
	}
	return r.cpu.Seconds() / float64(r.calls) * n
}

// percentile returns the q-quantile (0..1) of the recorded latencies; the
// slice is sorted on first use.
func (r *unaryResult) percentile(q float64) time.Duration {
	if len(r.latency) == 0 {
		return 0
	}
	if !slices.IsSorted(r.latency) {
		slices.Sort(r.latency)
	}
	i := int(q * float64(len(r.latency)))
	return r.latency[min(i, len(r.latency)-1)]
}

// runUnaryCell measures one target, protocol and concurrency once: warm-up,
// then cfg.duration of load, while reading the target's CPU time and peak
// RSS around the measured window. It adds to res.
func runUnaryCell(ctx context.Context, t *target, p protocol, conc int, cfg config, res *unaryResult) error {
	hc := newHTTPClient(p, conc)
	defer hc.CloseIdleConnections()
	client := newGreetClient(hc, t.addrFor(p.name), p)
	pid := t.proc.pid()
	if err := resetPeak(pid); err != nil {
		res.peakNote = "peak since process start (clear_refs: " + err.Error() + ")"
	}
	if cfg.warmup > 0 {
		drive(ctx, client, conc, cfg.warmup, false)
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	run := drive(ctx, client, conc, cfg.duration, true)
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	mem, err := procMem(pid)
	if err != nil {
		return err
	}
	res.calls += run.calls
	res.errors += run.errors
	if res.firstErr == "" && run.firstErr != nil {
		res.firstErr = oneLine(run.firstErr.Error())
	}
	res.elapsed += run.elapsed
	res.cpu += cpu1 - cpu0
	res.rates = append(res.rates, float64(run.calls)/run.elapsed.Seconds())
	res.latency = append(res.latency, run.latency...)
	res.peakRSS = max(res.peakRSS, mem.peak)
	return ctx.Err()
}

// driveResult is what one stretch of load did.
type driveResult struct {
	calls, errors int64
	firstErr      error
	elapsed       time.Duration
	latency       []time.Duration
}

// drive keeps conc callers busy for d: each starts a new call as soon as the
// last one returns, until d has passed. Latencies are kept when record is set.
func drive(ctx context.Context, client greetv1connect.GreetServiceClient, conc int, d time.Duration, record bool) driveResult {
	type worker struct {
		calls, errors int64
		firstErr      error
		latency       []time.Duration
	}
	workers := make([]worker, conc)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		if record {
			w.latency = make([]time.Duration, 0, 1024)
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				err := greetCall(ctx, client)
				dt := time.Since(t0)
				if err != nil {
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.calls++
				if record {
					w.latency = append(w.latency, dt)
				}
			}
		})
	}
	wg.Wait()
	out := driveResult{elapsed: time.Since(start)}
	for _, w := range workers {
		out.calls += w.calls
		out.errors += w.errors
		if out.firstErr == nil {
			out.firstErr = w.firstErr
		}
		out.latency = append(out.latency, w.latency...)
	}
	return out
}

// greetCall is one Greet with the 1 KiB name; an answer of the wrong size
// counts as an error.
func greetCall(ctx context.Context, client greetv1connect.GreetServiceClient) error {
	res, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: benchName}))
	if err != nil {
		return err
	}
	if len(res.Msg.GetGreeting()) != wantGreeting {
		return errWrongGreeting
	}
	return nil
}

var errWrongGreeting = errors.New("greeting of unexpected size")
