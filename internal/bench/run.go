package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"
)

// report is everything one run measured.
type report struct {
	cfg       config
	machine   machine
	started   time.Time
	fileLimit uint64
	targets   []*target // in allTargets order
	unary     map[unaryKey]*unaryResult
	hop       map[int]*unaryResult // concurrency → the hop's cell
	handshake map[unaryKey]*handshakeResult
	stream    map[streamKey]*streamResult
	memory    []memoryResult
	memErrs   map[string]string // target → why its memory case failed
}

// run starts the backend and the targets, measures, and writes the markdown
// report to out (and cfg.outFile).
func run(ctx context.Context, cfg config, out io.Writer, log *slog.Logger) (*report, error) {
	rep := &report{
		cfg:       cfg,
		machine:   readMachine(),
		started:   time.Now(),
		unary:     map[unaryKey]*unaryResult{},
		hop:       map[int]*unaryResult{},
		handshake: map[unaryKey]*handshakeResult{},
		stream:    map[streamKey]*streamResult{},
		memErrs:   map[string]string{},
	}
	limit, err := raiseFileLimit(uint64(3*cfg.streams + 4096))
	if err != nil {
		return nil, err
	}
	rep.fileLimit = limit
	tmp, err := os.MkdirTemp("", "corsgate-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cert, err := newBenchCert(tmp)
	if err != nil {
		return nil, err
	}

	backend, baddrs, err := startChild(ctx, roleBackend)
	if err != nil {
		return nil, fmt.Errorf("start the backend: %w", err)
	}
	defer backend.stop()
	log.Info("backend up", "addr", baddrs.Addr, "pid", backend.pid())

	for _, name := range allTargets {
		if !slices.Contains(cfg.targets, name) && !(cfg.streams > 0 && slices.Contains(cfg.memTargets, name)) {
			continue
		}
		t, err := startTarget(ctx, name, backend, baddrs, cfg, cert, tmp, log)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		defer t.stop()
		rep.targets = append(rep.targets, t)
		log.Info("target up", "target", name, "addr", t.plain.addr, "pid", t.plain.proc.pid(), "protocols", t.ok, "notes", t.notes)
	}
	if len(rep.targets) == 0 {
		return nil, fmt.Errorf("no targets selected")
	}
	inUnary := func(t *target) bool { return slices.Contains(cfg.targets, t.name) }

	// Unary: rounds × concurrency × protocol, the targets alternating inside,
	// their order rotating from round to round; the hop at each concurrency.
	for round := range cfg.rounds {
		order := rotate(rep.targets, round)
		for _, conc := range cfg.concurrency {
			for _, pname := range cfg.protocols {
				for _, t := range order {
					if !inUnary(t) || !t.speaks(pname) {
						continue
					}
					key := unaryKey{protocol: pname, concurrency: conc, target: t.name}
					res := rep.unary[key]
					if res == nil {
						res = &unaryResult{}
						rep.unary[key] = res
					}
					if err := runUnaryCell(ctx, t, protocols[pname], conc, cfg, res); err != nil {
						return nil, fmt.Errorf("unary %s %s c=%d: %w", t.name, pname, conc, err)
					}
					log.Info("unary", "round", round+1, "target", t.name, "protocol", pname, "concurrency", conc,
						"calls/s", int(res.rates[len(res.rates)-1]), "errors", res.errors)
				}
			}
			if hop := rep.find(targetHop); hop != nil && inUnary(hop) {
				res := rep.hop[conc]
				if res == nil {
					res = &unaryResult{}
					rep.hop[conc] = res
				}
				if err := runHopCell(ctx, hop, conc, cfg, res); err != nil {
					return nil, fmt.Errorf("hop c=%d: %w", conc, err)
				}
				log.Info("hop", "round", round+1, "concurrency", conc, "calls/s", int(res.rates[len(res.rates)-1]), "errors", res.errors)
			}
		}
	}

	// Handshakes: a new TLS connection per call.
	if cfg.handshakeC > 0 {
		for round := range cfg.rounds {
			for _, pname := range cfg.handshakeP {
				for _, t := range rotate(rep.targets, round) {
					if !inUnary(t) || !t.speaks(pname) {
						continue
					}
					key := unaryKey{protocol: pname, concurrency: cfg.handshakeC, target: t.name}
					res := rep.handshake[key]
					if res == nil {
						res = &handshakeResult{}
						rep.handshake[key] = res
					}
					if err := runHandshakeCell(ctx, t, protocols[pname], cfg.handshakeC, cfg, res); err != nil {
						return nil, fmt.Errorf("handshakes %s %s: %w", t.name, pname, err)
					}
					log.Info("handshakes", "round", round+1, "target", t.name, "protocol", pname,
						"calls/s", int(res.rates[len(res.rates)-1]), "errors", res.errors)
				}
			}
		}
	}

	// Streaming: one stream of cfg.streamCount messages per cell, plus grpc-go's
	// own client reading the backend directly.
	if cfg.streamCount > 0 {
		native := &endpoint{addr: baddrs.Addr, proc: backend}
		for round := range cfg.rounds {
			for _, pname := range cfg.protocols {
				for _, t := range rotate(rep.targets, round) {
					if !inUnary(t) || !streams(t.name) || !t.speaks(pname) {
						continue
					}
					recv, closeFn := connectReceiver(t, protocols[pname])
					if err := rep.streamCell(ctx, t.name, t.at(protocols[pname]), pname, recv, log, round); err != nil {
						closeFn()
						return nil, err
					}
					closeFn()
				}
			}
			recv, closeFn, err := grpcReceiver(baddrs.Addr)
			if err != nil {
				return nil, err
			}
			err = rep.streamCell(ctx, targetNative, native, protoGRPCGo, recv, log, round)
			closeFn()
			if err != nil {
				return nil, err
			}
		}
	}

	// Memory: cfg.streams streams held open through each memory target in turn.
	if cfg.streams > 0 {
		for _, t := range rep.targets {
			if !slices.Contains(cfg.memTargets, t.name) {
				continue
			}
			log.Info("memory case", "target", t.name, "streams", cfg.streams)
			res, err := runMemory(ctx, t, cfg.streams)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				rep.memErrs[t.name] = oneLine(err.Error())
				log.Warn("memory case failed", "target", t.name, "err", err)
				continue
			}
			rep.memory = append(rep.memory, res)
			log.Info("memory case", "target", t.name, "opened", res.opened, "rss MiB", mib(res.open.rss), "errors", res.errors)
		}
	}

	md := rep.markdown()
	if _, err := io.WriteString(out, md); err != nil {
		return nil, err
	}
	if cfg.outFile != "" {
		if err := os.WriteFile(cfg.outFile, []byte(md), 0o644); err != nil {
			return nil, fmt.Errorf("write -out: %w", err)
		}
	}
	return rep, nil
}

func (rep *report) streamCell(ctx context.Context, name string, ep *endpoint, pname string, recv receiver, log *slog.Logger, round int) error {
	key := streamKey{protocol: pname, target: name}
	res := rep.stream[key]
	if res == nil {
		res = &streamResult{}
		rep.stream[key] = res
	}
	if err := runStreamCell(ctx, ep, recv, rep.cfg.streamCount, res); err != nil {
		return fmt.Errorf("stream %s %s: %w", name, pname, err)
	}
	rate := 0
	if len(res.rates) > 0 {
		rate = int(res.rates[len(res.rates)-1])
	}
	log.Info("stream", "round", round+1, "target", name, "protocol", pname, "msgs/s", rate, "errors", res.errors)
	return nil
}

// find returns the started target of that name, or nil.
func (rep *report) find(name string) *target {
	for _, t := range rep.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}

// rotate returns ts rotated left by n.
func rotate(ts []*target, n int) []*target {
	n %= len(ts)
	return append(slices.Clone(ts[n:]), ts[:n]...)
}
