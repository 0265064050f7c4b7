package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// costSplit is corsgate's CPU per call on one protocol and concurrency,
// split into the floor's (serving HTTP and the answer), the hop's (calling
// the backend) and the rest, its own part. Seconds per call.
type costSplit struct {
	total, floor, hop, own float64
}

// ownShare is the own part as a fraction of the total.
func (c costSplit) ownShare() float64 {
	if c.total <= 0 {
		return 0
	}
	return c.own / c.total
}

// split returns corsgate's costSplit on pname at conc; ok is false unless
// corsgate, the floor and the hop were all measured there.
func (rep *report) split(pname string, conc int) (costSplit, bool) {
	g := rep.unary[unaryKey{protocol: pname, concurrency: conc, target: targetCorsgate}]
	f := rep.unary[unaryKey{protocol: pname, concurrency: conc, target: targetFloor}]
	h := rep.hop[conc]
	if g == nil || f == nil || h == nil || g.calls == 0 || f.calls == 0 || h.calls == 0 {
		return costSplit{}, false
	}
	c := costSplit{total: g.cpuPer(1), floor: f.cpuPer(1), hop: h.cpuPer(1)}
	c.own = c.total - c.floor - c.hop
	return c, true
}

// floorTable shows the hop's cells and corsgate's CPU per call split into
// floor, hop and its own part.
func (rep *report) floorTable(b *strings.Builder) {
	cfg := rep.cfg
	if len(rep.hop) > 0 {
		b.WriteString("### The backend hop alone\n\n")
		b.WriteString("The hop process calls the backend's Greet with the gateway's HTTP/2 client, one gRPC frame per call, as many callers as the concurrency; its CPU is the backend hop's cost.\n\n")
		b.WriteString("| conc. | calls/s | rounds min–max | CPU s / 10k calls | errors |\n")
		b.WriteString("|--:|--:|--:|--:|--:|\n")
		for _, conc := range cfg.concurrency {
			if h := rep.hop[conc]; h != nil {
				fmt.Fprintf(b, "| %d | %.0f | %s | %.2f | %s |\n", conc, h.rate(), fmtSpread(h.rates), h.cpuPer(10000), fmtErrors(h.errors, h.firstErr))
			}
		}
		b.WriteString("\n")
	}
	var rows []string
	for _, pname := range cfg.protocols {
		for _, conc := range cfg.concurrency {
			c, ok := rep.split(pname, conc)
			if !ok {
				continue
			}
			rows = append(rows, fmt.Sprintf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.0f %% |\n",
				pname, conc, c.total*1e4, c.floor*1e4, c.hop*1e4, c.own*1e4, 100*c.ownShare()))
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("### corsgate's CPU per call: floor + hop + its own part\n\n")
	b.WriteString("floor: the `floor` target's CPU per call on the same protocol and concurrency (serving HTTP, TLS and a canned answer); hop: the backend hop's. " +
		"Own part = corsgate − floor − hop: the translation, CORS, routing and metrics. CPU s / 10k calls.\n\n")
	b.WriteString("| protocol | conc. | corsgate | floor | hop | own part | own part ÷ corsgate |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		b.WriteString(r)
	}
	b.WriteString("\n")
}

// addedP50 is how much later than direct's the median call of target
// returned on pname at concurrency 1.
func (rep *report) addedP50(target, pname string) (time.Duration, bool) {
	r := rep.unary[unaryKey{protocol: pname, concurrency: 1, target: target}]
	d := rep.unary[unaryKey{protocol: pname, concurrency: 1, target: targetDirect}]
	if r == nil || d == nil || r.calls == 0 || d.calls == 0 {
		return 0, false
	}
	return r.percentile(0.5) - d.percentile(0.5), true
}

// lowLoadTable shows, per protocol, the median latency each target adds to
// direct's at concurrency 1: what one user's call pays for the hop.
func (rep *report) lowLoadTable(b *strings.Builder) {
	cfg := rep.cfg
	if !slices.Contains(cfg.concurrency, 1) || !slices.Contains(cfg.targets, targetDirect) {
		return
	}
	var cols []string
	for _, t := range rep.targets {
		if t.name != targetDirect && t.name != targetHop && slices.Contains(cfg.targets, t.name) {
			cols = append(cols, t.name)
		}
	}
	b.WriteString("### Latency at low load: p50 added over direct at concurrency 1\n\n")
	b.WriteString("| protocol | direct p50 | " + strings.Join(cols, " | ") + " |\n")
	b.WriteString("|---|--:|" + strings.Repeat("--:|", len(cols)) + "\n")
	for _, pname := range cfg.protocols {
		d := rep.unary[unaryKey{protocol: pname, concurrency: 1, target: targetDirect}]
		if d == nil || d.calls == 0 {
			continue
		}
		fmt.Fprintf(b, "| %s | %s |", pname, fmtLatency(d.percentile(0.5)))
		for _, name := range cols {
			if added, ok := rep.addedP50(name, pname); ok {
				fmt.Fprintf(b, " %s |", fmtAdded(added))
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// handshakeTable shows the handshake case.
func (rep *report) handshakeTable(b *strings.Builder) {
	cfg := rep.cfg
	if cfg.handshakeC == 0 || len(rep.handshake) == 0 {
		return
	}
	fmt.Fprintf(b, "### TLS handshakes: a new connection per call, %d callers\n\n", cfg.handshakeC)
	b.WriteString("Every call opens a TCP connection, makes a full TLS handshake (no session resumption), sends one Greet and closes: a browser's first visit. " +
		"CPU per call is mostly the target's side of the handshake.\n\n")
	b.WriteString("| protocol | target | calls/s | rounds min–max | p50 | p99 | CPU s / 10k calls | connections / call | errors | calls/s ÷ grpcwebproxy | CPU/call ÷ grpcwebproxy |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, pname := range cfg.handshakeP {
		base := rep.handshake[unaryKey{protocol: baseProtocol(pname), concurrency: cfg.handshakeC, target: targetGRPCWebProxy}]
		for _, t := range rep.targets {
			r := rep.handshake[unaryKey{protocol: pname, concurrency: cfg.handshakeC, target: t.name}]
			if r == nil {
				continue
			}
			ratio, cpu := "—", "—"
			if base != nil && t.name != targetGRPCWebProxy {
				ratio, cpu = fmtRatio(rateRatio(&r.unaryResult, &base.unaryResult)), fmtRatio(cpuRatio(&r.unaryResult, &base.unaryResult))
			}
			perCall := 0.0
			if r.calls+r.errors > 0 {
				perCall = float64(r.conns) / float64(r.calls+r.errors)
			}
			fmt.Fprintf(b, "| %s | %s | %.0f | %s | %s | %s | %.2f | %.2f | %s | %s | %s |\n",
				pname, t.name, r.rate(), fmtSpread(r.rates), fmtLatency(r.percentile(0.5)), fmtLatency(r.percentile(0.99)),
				r.cpuPer(10000), perCall, fmtErrors(r.errors, r.firstErr), ratio, cpu)
		}
	}
	b.WriteString("\n")
}

// fmtAdded is a latency difference with its sign.
func fmtAdded(d time.Duration) string {
	if d < 0 {
		return "−" + fmtLatency(-d)
	}
	return "+" + fmtLatency(d)
}
