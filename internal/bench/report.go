package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// machine describes where the run happened.
type machine struct {
	nproc     int
	cpuModel  string
	kernel    string
	memTotal  string
	goVersion string
}

func readMachine() machine {
	m := machine{nproc: runtime.NumCPU(), goVersion: runtime.Version(), cpuModel: "unknown", kernel: "unknown", memTotal: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb uint64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
					m.memTotal = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
				}
				break
			}
		}
	}
	return m
}

// command rebuilds the command line that repeats this run.
func (c config) command() string {
	ints := make([]string, len(c.concurrency))
	for i, n := range c.concurrency {
		ints[i] = fmt.Sprint(n)
	}
	return fmt.Sprintf("go run ./internal/bench -duration %v -warmup %v -rounds %d -concurrency %s -targets %s -protocols %s -handshake-concurrency %d -handshake-protocols %s -stream-messages %d -streams %d -memory-targets %s -corsgate-metrics=%t",
		c.duration, c.warmup, c.rounds, strings.Join(ints, ","), strings.Join(c.targets, ","), strings.Join(c.protocols, ","),
		c.handshakeC, strings.Join(c.handshakeP, ","), c.streamCount, c.streams, strings.Join(c.memTargets, ","), c.corsgateMetr)
}

func (rep *report) markdown() string {
	var b strings.Builder
	cfg, m := rep.cfg, rep.machine
	fmt.Fprintf(&b, "## corsgate gateway benchmark\n\n")
	fmt.Fprintf(&b, "- Run: %s, %v measured per cell after %v of warm-up, %d round(s); the targets alternate inside each round, their order rotating from round to round.\n",
		rep.started.UTC().Format(time.RFC3339), cfg.duration, cfg.warmup, cfg.rounds)
	if cfg.smoke {
		fmt.Fprintf(&b, "- **Smoke run**: too short to mean anything; it only proves the bench works.\n")
	}
	fmt.Fprintf(&b, "- Command: `%s`\n", cfg.command())
	fmt.Fprintf(&b, "- Machine: %d CPUs (%s), %s, Linux %s, %s; the load generator, the backend and the targets share it. Open-file limit %d.\n",
		m.nproc, m.cpuModel, m.memTotal, m.kernel, m.goVersion, rep.fileLimit)
	fmt.Fprintf(&b, "- Load: connect-go clients in the bench process; Greet with a %d-byte name (the answer is %d bytes), `Origin: %s` on every call, compression off. "+
		"TLS: a self-signed ECDSA P-256 certificate made at the start, Go's default TLS 1.3 settings on both sides.\n\n",
		messageSize, wantGreeting, benchOrigin)

	b.WriteString("Protocols (wire/transport):")
	for _, name := range allProtocols {
		if slices.Contains(cfg.protocols, name) || (cfg.handshakeC > 0 && slices.Contains(cfg.handshakeP, name)) {
			p := protocols[name]
			fmt.Fprintf(&b, " `%s` %s over %s;", name, p.wire, p.transport.describe())
		}
	}
	b.WriteString(" every answer's HTTP version and ALPN are checked.\n\n")

	fmt.Fprintf(&b, "Targets (each a separate process; CPU and memory columns are that process):\n\n")
	for _, t := range rep.targets {
		var speaks []string
		for _, p := range candidates[t.name] {
			if t.speaks(p) {
				speaks = append(speaks, "`"+p+"`")
			}
		}
		fmt.Fprintf(&b, "- **%s**: %s.", t.name, t.desc)
		if len(speaks) > 0 {
			fmt.Fprintf(&b, " Answers %s.", strings.Join(speaks, ", "))
		}
		for _, p := range candidates[t.name] {
			if r, ok := t.notes[p]; ok {
				fmt.Fprintf(&b, " `%s`: %s.", p, r)
			}
		}
		if t.plain.allocs != nil {
			fmt.Fprintf(&b, " Allocations: %s.", t.plain.allocsLabel)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")

	rep.goalsSection(&b)
	rep.unaryTable(&b)
	rep.lowLoadTable(&b)
	rep.floorTable(&b)
	rep.handshakeTable(&b)
	rep.streamTable(&b)
	rep.memoryTable(&b)

	b.WriteString("Notes: CPU is utime+stime of the target process from /proc/<pid>/stat (10 ms ticks) over the measured window only. " +
		"Allocations are the target's heap allocation counters (runtime/metrics `/gc/heap/allocs:bytes` and `:objects`) read before and after the measured window, " +
		"less the cost of one read of them; they count a span's objects when it is handed back, so short windows are approximate. " +
		"Peak RSS is VmHWM from /proc/<pid>/status, reset through /proc/<pid>/clear_refs before each cell and the highest over the rounds. " +
		"Latencies are over every measured call of all rounds. Ratios compare with grpcwebproxy's gRPC-Web cell at the same concurrency over the same TLS transport " +
		"(plain protocols: `grpc-web/h1`) (unary and handshakes), and with grpcwebproxy's gRPC-Web stream and grpc-go's own client (streaming).\n")
	return b.String()
}

func (rep *report) unaryTable(b *strings.Builder) {
	cfg := rep.cfg
	fmt.Fprintf(b, "### Unary: Greet, 1 KiB each way\n\n")
	b.WriteString("| protocol | conc. | target | calls/s | rounds min–max | p50 | p99 | CPU s / 10k calls | alloc B / call | allocs / call | peak RSS MiB | errors | calls/s ÷ grpcwebproxy | CPU/call ÷ grpcwebproxy |\n")
	b.WriteString("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var peakNotes, allocNotes []string
	for _, conc := range cfg.concurrency {
		for _, pname := range cfg.protocols {
			base := rep.unary[unaryKey{protocol: baseProtocol(pname), concurrency: conc, target: targetGRPCWebProxy}]
			for _, t := range rep.targets {
				if !slices.Contains(cfg.targets, t.name) || t.name == targetHop {
					continue
				}
				r := rep.unary[unaryKey{protocol: pname, concurrency: conc, target: t.name}]
				if r == nil {
					if slices.Contains(candidates[t.name], pname) { // meant to speak it, but the probe failed
						fmt.Fprintf(b, "| %s | %d | %s | n/a: %s | | | | | | | | | | |\n", pname, conc, t.name, t.naReason(pname))
					}
					continue
				}
				if r.peakNote != "" && !slices.Contains(peakNotes, r.peakNote) {
					peakNotes = append(peakNotes, r.peakNote)
				}
				allocB, allocN := "n/a", "n/a"
				if bytes, objects, ok := r.allocPer(); ok {
					allocB, allocN = fmt.Sprintf("%.0f", bytes), fmt.Sprintf("%.1f", objects)
				} else if note := t.name + ": " + r.allocErr; r.allocErr != "" && !slices.Contains(allocNotes, note) {
					allocNotes = append(allocNotes, note)
				}
				ratio, cpu := "—", "—"
				if t.name != targetGRPCWebProxy {
					ratio, cpu = fmtRatio(rateRatio(r, base)), fmtRatio(cpuRatio(r, base))
				}
				fmt.Fprintf(b, "| %s | %d | %s | %.0f | %s | %s | %s | %.2f | %s | %s | %.1f | %s | %s | %s |\n",
					pname, conc, t.name, r.rate(), fmtSpread(r.rates), fmtLatency(r.percentile(0.50)), fmtLatency(r.percentile(0.99)),
					r.cpuPer(10000), allocB, allocN, mib(r.peakRSS), fmtErrors(r.errors, r.firstErr), ratio, cpu)
			}
		}
	}
	b.WriteString("\n")
	for _, n := range peakNotes {
		fmt.Fprintf(b, "Peak RSS caveat: %s.\n\n", n)
	}
	for _, n := range allocNotes {
		fmt.Fprintf(b, "Allocations not read: %s.\n\n", n)
	}
}

// baseProtocol is grpcwebproxy's cell a protocol's ratios compare with:
// gRPC-Web over the same TLS transport, or over HTTP/1.1 for the plain
// protocols (grpcwebproxy serves no h2c).
func baseProtocol(name string) string {
	switch protocols[name].transport {
	case h1TLS:
		return protoGRPCWebH1TLS
	case h2TLS:
		return protoGRPCWebH2TLS
	}
	return protoGRPCWebH1
}

// rateRatio is r's calls/s over base's; ok is false when either is missing.
func rateRatio(r, base *unaryResult) (float64, bool) {
	if r == nil || base == nil || r.calls == 0 || base.calls == 0 {
		return 0, false
	}
	return r.rate() / base.rate(), true
}

// cpuRatio is r's CPU per call over base's; ok is false when either is
// missing or base used no measurable CPU.
func cpuRatio(r, base *unaryResult) (float64, bool) {
	if r == nil || base == nil || r.calls == 0 || base.calls == 0 || base.cpu <= 0 {
		return 0, false
	}
	return r.cpuPer(1) / base.cpuPer(1), true
}

func fmtRatio(x float64, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f×", x)
}

func fmtSpread(rates []float64) string {
	lo, hi := minMax(rates)
	return fmt.Sprintf("%.0f–%.0f", lo, hi)
}

func fmtErrors(n int64, first string) string {
	s := fmt.Sprint(n)
	if first != "" {
		s += " (" + first + ")"
	}
	return s
}

func (rep *report) streamTable(b *strings.Builder) {
	cfg := rep.cfg
	if cfg.streamCount == 0 {
		return
	}
	fmt.Fprintf(b, "### Server streaming: one GreetStream of %d small messages\n\n", cfg.streamCount)
	b.WriteString("| protocol | target | msgs/s | rounds min–max | CPU s / 100k msgs | peak RSS MiB | errors | ÷ grpcwebproxy | ÷ grpc-go native |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	native := rep.stream[streamKey{protocol: protoGRPCGo, target: targetNative}]
	row := func(pname, label, name string, r *streamResult) {
		base := rep.stream[streamKey{protocol: baseProtocol(pname), target: targetGRPCWebProxy}]
		ratio := func(base *streamResult) string {
			if base == nil || base == r || base.msgs == 0 || r.msgs == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f×", r.rate()/base.rate())
		}
		cpu := 0.0
		if r.msgs > 0 {
			cpu = r.cpu.Seconds() / float64(r.msgs) * 100000
		}
		fmt.Fprintf(b, "| %s | %s | %.0f | %s | %.2f | %.1f | %s | %s | %s |\n",
			label, name, r.rate(), fmtSpread(r.rates), cpu, mib(r.peakRSS), fmtErrors(int64(r.errors), r.firstErr), ratio(base), ratio(native))
	}
	for _, pname := range cfg.protocols {
		for _, t := range rep.targets {
			if !slices.Contains(cfg.targets, t.name) || !streams(t.name) {
				continue
			}
			r := rep.stream[streamKey{protocol: pname, target: t.name}]
			if r == nil {
				if slices.Contains(candidates[t.name], pname) {
					fmt.Fprintf(b, "| %s | %s | n/a: %s | | | | | | |\n", pname, t.name, t.naReason(pname))
				}
				continue
			}
			row(pname, pname, t.name, r)
		}
	}
	if native != nil {
		row(protoGRPCH2C, protoGRPCH2C+", grpc-go client", targetNative, native)
	}
	b.WriteString("\n")
}

func (rep *report) memoryTable(b *strings.Builder) {
	cfg := rep.cfg
	if cfg.streams == 0 || (len(rep.memory) == 0 && len(rep.memErrs) == 0) {
		return
	}
	fmt.Fprintf(b, "### Memory: %d server streams held open\n\n", cfg.streams)
	b.WriteString("Each stream is a GreetStream asking for 100 000 messages 10 s apart; a stream counts as open once its first message arrived. " +
		"HTTP/2 (h2c) clients open further connections as the server's stream limit requires; over HTTP/1.1 every stream has its own connection.\n\n")
	b.WriteString("| target | protocol | streams open | time to open | RSS before MiB | RSS open MiB | peak RSS MiB | heap in use MiB | heap source | errors |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|---|--:|\n")
	for _, r := range rep.memory {
		heap := fmt.Sprintf("%.1f", mib(r.heapOpen))
		if r.heapErr != "" {
			heap = "n/a (" + r.heapErr + ")"
		}
		errs := fmt.Sprint(r.errors)
		if r.firstErr != "" {
			errs += " (" + r.firstErr + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %d / %d | %.1f s | %.1f | %.1f | %.1f | %s | %s | %s |\n",
			r.target, r.protocol, r.opened, r.want, r.openTime.Seconds(),
			mib(r.before.rss), mib(r.open.rss), mib(r.open.peak), heap, r.heapLabel, errs)
	}
	for _, t := range rep.targets {
		if e, ok := rep.memErrs[t.name]; ok {
			fmt.Fprintf(b, "| %s | | failed: %s | | | | | | | |\n", t.name, e)
		}
	}
	b.WriteString("\n")
}

func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func fmtLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
