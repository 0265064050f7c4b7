package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The performance issue's targets for corsgate, each checked against this
// run's cells. A check whose cells were not measured says so and counts
// neither way.

// goalConcurrency are the concurrencies the throughput and CPU targets are
// set at.
var goalConcurrency = []int{16, 64}

// goalRow is one check of one cell, or the floor the check is read against.
type goalRow struct {
	cell     string
	measured string
	met      *bool // nil: not measured, or a floor
	floor    bool  // a reference figure, not a check: counts neither way
}

// goal is one target of the issue and its checks.
type goal struct {
	name string
	rows []goalRow
}

func (g *goal) add(cell, measured string, met bool) {
	g.rows = append(g.rows, goalRow{cell: cell, measured: measured, met: &met})
}

func (g *goal) missing(cell, why string) {
	g.rows = append(g.rows, goalRow{cell: cell, measured: why})
}

// floorRow adds the floor's figure for a cell: what the cheapest design
// reaches, against which the check is read.
func (g *goal) floorRow(cell, measured string) {
	g.rows = append(g.rows, goalRow{cell: cell, measured: measured, floor: true})
}

// goalConcs returns the goal concurrencies this run measured; when it
// measured none of them, its concurrencies above 1, else all of them.
func (rep *report) goalConcs() []int {
	var out []int
	for _, c := range rep.cfg.concurrency {
		if slices.Contains(goalConcurrency, c) {
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, c := range rep.cfg.concurrency {
		if c > 1 {
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out
	}
	return rep.cfg.concurrency
}

// cell returns the unary result of target on pname at conc when it made
// calls.
func (rep *report) cell(target, pname string, conc int) *unaryResult {
	r := rep.unary[unaryKey{protocol: pname, concurrency: conc, target: target}]
	if r == nil || r.calls == 0 {
		return nil
	}
	return r
}

// goals computes every check.
func (rep *report) goals() []*goal {
	concs := rep.goalConcs()
	measured := func(pname string) bool { return slices.Contains(rep.cfg.protocols, pname) }
	cellName := func(pname string, conc int) string { return fmt.Sprintf("%s c=%d", pname, conc) }
	browserTLS := []string{protoGRPCWebH1TLS, protoConnectH1TLS, protoGRPCWebH2TLS, protoConnectH2TLS}

	// ratio checks a ratio of corsgate's cell to another target's.
	ratio := func(g *goal, pname string, conc int, other, otherProto string, f func(r, base *unaryResult) (float64, bool), ok func(float64) bool) {
		name := cellName(pname, conc)
		r, base := rep.cell(targetCorsgate, pname, conc), rep.cell(other, otherProto, conc)
		if r == nil || base == nil {
			g.missing(name, "not measured")
			return
		}
		x, valid := f(r, base)
		if !valid {
			g.missing(name, "no CPU measured")
			return
		}
		g.add(name, fmt.Sprintf("%.2f×", x), ok(x))
	}

	rate := &goal{name: "calls/s ÷ grpcwebproxy ≥ 2.0× (gRPC-Web and Connect over TLS; Connect against grpcwebproxy's gRPC-Web)"}
	cpu := &goal{name: "CPU/call ÷ grpcwebproxy ≤ 0.35× (the same cells)"}
	for _, pname := range browserTLS {
		if !measured(pname) {
			continue
		}
		for _, conc := range concs {
			ratio(rate, pname, conc, targetGRPCWebProxy, baseProtocol(pname), rateRatio, func(x float64) bool { return x >= 2.0 })
			ratio(cpu, pname, conc, targetGRPCWebProxy, baseProtocol(pname), cpuRatio, func(x float64) bool { return x <= 0.35 })
		}
	}

	own := &goal{name: "corsgate's own part ≤ 25 % of its CPU/call (what the floor and the hop do not explain)"}
	for _, pname := range candidates[targetFloor] {
		if !measured(pname) {
			continue
		}
		for _, conc := range concs {
			c, ok := rep.split(pname, conc)
			if !ok {
				own.missing(cellName(pname, conc), "corsgate, floor or hop not measured")
				continue
			}
			own.add(cellName(pname, conc), fmt.Sprintf("%.0f %%", 100*c.ownShare()), c.ownShare() <= 0.25)
		}
	}

	direct := &goal{name: "CPU/call ÷ direct ≤ 1.2× over HTTP/1.1, ≤ 1.0× over HTTP/2 with TLS"}
	for _, pname := range rep.cfg.protocols {
		var limit float64
		switch protocols[pname].transport {
		case h1, h1TLS:
			limit = 1.2
		case h2TLS:
			limit = 1.0
		default:
			continue
		}
		for _, conc := range concs {
			ratio(direct, pname, conc, targetDirect, pname, cpuRatio, func(x float64) bool { return x <= limit })
		}
	}

	pass := &goal{name: "gRPC pass-through calls/s ÷ native grpc-go ≥ 0.6×"}
	// Both of corsgate's gRPC listeners: --listen (net/http) and
	// --grpc-listen (grpc-go's server), against the backend called with the
	// same client.
	for _, pname := range []string{protoGRPCH2C, protoGRPCListen} {
		if !measured(pname) {
			continue
		}
		for _, conc := range concs {
			ratio(pass, pname, conc, targetNative, protoGRPCH2C, rateRatio, func(x float64) bool { return x >= 0.6 })
		}
	}
	// The floor: the cheapest gRPC proxy on grpc-go, against the same native
	// cells.
	if measured(protoGRPCH2C) {
		for _, conc := range concs {
			r, base := rep.cell(targetGRPCProxy, protoGRPCH2C, conc), rep.cell(targetNative, protoGRPCH2C, conc)
			if r == nil || base == nil {
				continue
			}
			if x, ok := rateRatio(r, base); ok {
				pass.floorRow(fmt.Sprintf("%s c=%d, %s (the floor)", protoGRPCH2C, conc, targetGRPCProxy), fmt.Sprintf("%.2f×", x))
			}
		}
	}

	p50 := &goal{name: "p50 added over direct at concurrency 1 ≤ 100 µs"}
	if slices.Contains(rep.cfg.concurrency, 1) {
		for _, pname := range rep.cfg.protocols {
			if !slices.Contains(candidates[targetDirect], pname) {
				continue
			}
			if added, ok := rep.addedP50(targetCorsgate, pname); ok {
				p50.add(cellName(pname, 1), fmtAdded(added), added <= 100*time.Microsecond)
			} else {
				p50.missing(cellName(pname, 1), "corsgate or direct not measured")
			}
		}
	}

	alloc := &goal{name: "heap bytes allocated per unary call by the gateway ≤ 2 KiB"}
	for _, pname := range rep.cfg.protocols {
		for _, conc := range concs {
			r := rep.cell(targetCorsgate, pname, conc)
			if r == nil {
				continue
			}
			if bytes, objects, ok := r.allocPer(); ok {
				alloc.add(cellName(pname, conc), fmt.Sprintf("%.0f B (%.1f objects)", bytes, objects), bytes <= 2048)
			} else {
				alloc.missing(cellName(pname, conc), "not read: "+r.allocErr)
			}
		}
	}
	return []*goal{rate, cpu, own, direct, pass, p50, alloc}
}

// goalsSection writes the checks, one table row per cell.
func (rep *report) goalsSection(b *strings.Builder) {
	goals := rep.goals()
	met, missed, unknown := 0, 0, 0
	for _, g := range goals {
		for _, r := range g.rows {
			switch {
			case r.floor:
			case r.met == nil:
				unknown++
			case *r.met:
				met++
			default:
				missed++
			}
		}
	}
	if met+missed+unknown == 0 {
		return
	}
	b.WriteString("### The issue's targets\n\n")
	fmt.Fprintf(b, "Computed from the cells below at concurrency %s (and 1 for latency): %d met, %d missed, %d not measured.", fmtInts(rep.goalConcs()), met, missed, unknown)
	if rep.cfg.smoke {
		b.WriteString(" A smoke run's verdicts mean nothing.")
	}
	b.WriteString("\n\n| target | cell | measured | verdict |\n|---|---|--:|---|\n")
	for _, g := range goals {
		for i, r := range g.rows {
			name := ""
			if i == 0 {
				name = g.name
			}
			verdict := "—"
			if r.floor {
				verdict = "floor"
			}
			if r.met != nil {
				verdict = "met"
				if !*r.met {
					verdict = "**missed**"
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, r.cell, r.measured, verdict)
		}
	}
	b.WriteString("\n")
}

func fmtInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
