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
	return fmt.Sprintf("go run ./internal/bench -duration %v -warmup %v -rounds %d -concurrency %s -targets %s -protocols %s -stream-messages %d -streams %d -memory-targets %s -corsgate-metrics=%t",
		c.duration, c.warmup, c.rounds, strings.Join(ints, ","), strings.Join(c.targets, ","), strings.Join(c.protocols, ","),
		c.streamCount, c.streams, strings.Join(c.memTargets, ","), c.corsgateMetr)
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
	fmt.Fprintf(&b, "- Load: connect-go clients in the bench process; Greet with a %d-byte name (the answer is %d bytes), `Origin: %s` on every call, compression off.\n\n",
		messageSize, wantGreeting, benchOrigin)

	fmt.Fprintf(&b, "Targets (each a separate process; CPU and memory columns are that process):\n\n")
	for _, t := range rep.targets {
		var speaks []string
		for _, p := range candidates[t.name] {
			if t.speaks(p) {
				speaks = append(speaks, protocols[p].label)
			}
		}
		fmt.Fprintf(&b, "- **%s**: %s. Answers %s.", t.name, t.desc, strings.Join(speaks, "; "))
		for _, p := range candidates[t.name] {
			if r, ok := t.notes[p]; ok {
				fmt.Fprintf(&b, " %s: %s.", protocols[p].label, r)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")

	rep.unaryTable(&b)
	rep.streamTable(&b)
	rep.memoryTable(&b)

	b.WriteString("Notes: CPU is utime+stime of the target process from /proc/<pid>/stat (10 ms ticks) over the measured window only. " +
		"Peak RSS is VmHWM from /proc/<pid>/status, reset through /proc/<pid>/clear_refs before each cell and the highest over the rounds. " +
		"Latencies are over every measured call of all rounds. Ratios compare with grpcwebproxy's gRPC-Web cell at the same concurrency (unary) " +
		"and with grpcwebproxy's gRPC-Web stream and grpc-go's own client (streaming).\n")
	return b.String()
}

func (rep *report) unaryTable(b *strings.Builder) {
	cfg := rep.cfg
	fmt.Fprintf(b, "### Unary: Greet, 1 KiB each way\n\n")
	b.WriteString("| protocol | conc. | target | calls/s | rounds min–max | p50 | p99 | CPU s / 10k calls | peak RSS MiB | errors | calls/s ÷ grpcwebproxy | CPU/call ÷ grpcwebproxy |\n")
	b.WriteString("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var peakNotes []string
	for _, conc := range cfg.concurrency {
		base := rep.unary[unaryKey{protocol: protoGRPCWeb, concurrency: conc, target: targetGRPCWebProxy}]
		for _, pname := range cfg.protocols {
			for _, t := range rep.targets {
				if !slices.Contains(cfg.targets, t.name) {
					continue
				}
				label := protocols[pname].label
				r := rep.unary[unaryKey{protocol: pname, concurrency: conc, target: t.name}]
				if r == nil {
					if slices.Contains(candidates[t.name], pname) { // meant to speak it, but the probe failed
						fmt.Fprintf(b, "| %s | %d | %s | n/a: %s | | | | | | | | |\n", label, conc, t.name, t.naReason(pname))
					}
					continue
				}
				if r.peakNote != "" && !slices.Contains(peakNotes, r.peakNote) {
					peakNotes = append(peakNotes, r.peakNote)
				}
				lo, hi := minMax(r.rates)
				errs := fmt.Sprint(r.errors)
				if r.firstErr != "" {
					errs += " (" + r.firstErr + ")"
				}
				ratio, cpuRatio := "—", "—"
				if base != nil && base.calls > 0 && t.name != targetGRPCWebProxy {
					ratio = fmt.Sprintf("%.2f×", r.rate()/base.rate())
					if base.cpu > 0 {
						cpuRatio = fmt.Sprintf("%.2f×", r.cpuPer(1)/base.cpuPer(1))
					}
				}
				fmt.Fprintf(b, "| %s | %d | %s | %.0f | %.0f–%.0f | %s | %s | %.2f | %.1f | %s | %s | %s |\n",
					label, conc, t.name, r.rate(), lo, hi, fmtLatency(r.percentile(0.50)), fmtLatency(r.percentile(0.99)),
					r.cpuPer(10000), mib(r.peakRSS), errs, ratio, cpuRatio)
			}
		}
	}
	b.WriteString("\n")
	for _, n := range peakNotes {
		fmt.Fprintf(b, "Peak RSS caveat: %s.\n\n", n)
	}
}

func (rep *report) streamTable(b *strings.Builder) {
	cfg := rep.cfg
	if cfg.streamCount == 0 {
		return
	}
	fmt.Fprintf(b, "### Server streaming: one GreetStream of %d small messages\n\n", cfg.streamCount)
	b.WriteString("| protocol | target | msgs/s | rounds min–max | CPU s / 100k msgs | peak RSS MiB | errors | ÷ grpcwebproxy | ÷ grpc-go native |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	base := rep.stream[streamKey{protocol: protoGRPCWeb, target: targetGRPCWebProxy}]
	native := rep.stream[streamKey{protocol: protoGRPCGo, target: targetNative}]
	row := func(label, name string, r *streamResult) {
		lo, hi := minMax(r.rates)
		errs := fmt.Sprint(r.errors)
		if r.firstErr != "" {
			errs += " (" + r.firstErr + ")"
		}
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
		fmt.Fprintf(b, "| %s | %s | %.0f | %.0f–%.0f | %.2f | %.1f | %s | %s | %s |\n",
			label, name, r.rate(), lo, hi, cpu, mib(r.peakRSS), errs, ratio(base), ratio(native))
	}
	for _, pname := range cfg.protocols {
		for _, t := range rep.targets {
			if !slices.Contains(cfg.targets, t.name) {
				continue
			}
			r := rep.stream[streamKey{protocol: pname, target: t.name}]
			if r == nil {
				if slices.Contains(candidates[t.name], pname) {
					fmt.Fprintf(b, "| %s | %s | n/a: %s | | | | | | |\n", protocols[pname].label, t.name, t.naReason(pname))
				}
				continue
			}
			row(protocols[pname].label, t.name, r)
		}
	}
	if native != nil {
		row("gRPC, h2c, grpc-go client", targetNative, native)
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
			r.target, protocols[r.protocol].label, r.opened, r.want, r.openTime.Seconds(),
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
