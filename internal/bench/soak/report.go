package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// writeReport prints the summary: a table of calls per kind, the chaos, the
// runtime before and after, the logs, and every broken invariant.
func writeReport(w io.Writer, s *summary) {
	fmt.Fprintf(w, "corsgate soak: %s of load and chaos (seed %d), %d workers, %d slow readers, cancel %.0f %%, disallowed origin %.0f %%, strict %t\n\n",
		s.loadTime.Round(time.Second), s.seed, s.cfg.workers, s.cfg.slowReaders, 100*s.cfg.cancelRate, 100*s.cfg.foreignRate, s.cfg.strict)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "call\tcalls\tok\trefused\tclient ended\tgateway errors\tviolations\tslowest")
	var total kindStats
	total.outcomes = map[string]int{}
	for _, k := range s.calls.kindNames() {
		ks := s.calls.stats(k)
		ok := ks.outcomes[outcomeOK] + ks.outcomes[outcomeForeign]
		client := 0
		var errs []string
		for o, n := range ks.outcomes {
			total.outcomes[o] += n
			switch {
			case o == outcomeOK || o == outcomeForeign || o == outcomeRefused:
			case strings.HasSuffix(o, suffixClient):
				client += n
			default:
				errs = append(errs, fmt.Sprintf("%s=%d", o, n))
			}
		}
		sort.Strings(errs)
		total.calls += ks.calls
		total.violations += ks.violations
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", k, ks.calls, ok, ks.outcomes[outcomeRefused], client, dash(strings.Join(errs, " ")), ks.violations, ks.maxTook.Round(time.Millisecond))
	}
	var errs []string
	client := 0
	for o, n := range total.outcomes {
		switch {
		case o == outcomeOK || o == outcomeForeign || o == outcomeRefused:
		case strings.HasSuffix(o, suffixClient):
			client += n
		default:
			errs = append(errs, fmt.Sprintf("%s=%d", o, n))
		}
	}
	sort.Strings(errs)
	fmt.Fprintf(tw, "all\t%d\t%d\t%d\t%d\t%s\t%d\t\n", total.calls, total.outcomes[outcomeOK]+total.outcomes[outcomeForeign], total.outcomes[outcomeRefused], client, dash(strings.Join(errs, " ")), total.violations)
	tw.Flush()
	fmt.Fprintln(w, `
  ok: completed with the right payload and CORS headers; refused: a disallowed origin (or a
  barred procedure's preflight) refused as it must be; client ended: the client's random cancel
  or its own deadline ended the call (Canceled or DeadlineExceeded raised by the client);
  gateway errors: failures the gateway wrote in the caller's protocol, with CORS headers, by code.`)

	if len(s.calls.errors) > 0 {
		fmt.Fprintln(w, "\nfailure messages, by outcome (the most frequent first):")
		var outcomes []string
		for o := range s.calls.errors {
			outcomes = append(outcomes, o)
		}
		sort.Strings(outcomes)
		for _, o := range outcomes {
			writeTop(w, "  "+o, s.calls.errors[o])
		}
	}

	fmt.Fprintf(w, "\nchaos: backend SIGKILLed %d times and restarted on the same port (%d starts in all)", s.kills, s.starts)
	if s.cfg.killEvery > 0 {
		fmt.Fprintf(w, ", every %s, down %s each time", s.cfg.killEvery, s.cfg.down)
	}
	fmt.Fprintln(w)
	if len(s.outages) > 0 {
		var up, late, worst time.Duration
		cut, fails := 0, 0
		for _, o := range s.outages {
			d := max(o.lastFail.Sub(o.up), 0)
			if o.fails == 0 {
				d = 0
			}
			up, late, worst = up+o.up.Sub(o.killed), late+d, max(worst, d)
			cut, fails = cut+o.cut, fails+o.fails
		}
		n := time.Duration(len(s.outages))
		fmt.Fprintf(w, "  per kill on average: backend back after %s; %.1f calls in flight cut, %.1f new calls failed with unavailable, the last starting %s after the backend was back (longest %s)\n",
			(up / n).Round(time.Millisecond), float64(cut)/float64(n), float64(fails)/float64(n), (late / n).Round(time.Millisecond), worst.Round(time.Millisecond))
	}
	if len(s.outages) <= 10 {
		for i, o := range s.outages {
			fmt.Fprintf(w, "  kill %d at %s: backend back after %s, %d calls cut, %d failed, the last starting %s after the kill: %s\n", i+1, o.killed.Format("15:04:05.000"), o.up.Sub(o.killed).Round(time.Millisecond), o.cut, o.fails, max(o.lastFail.Sub(o.killed), 0).Round(time.Millisecond), clip2(o.lastCall, 160))
		}
	}
	if s.unfiled > 0 {
		fmt.Fprintf(w, "  %d calls failed with unavailable before the first kill; the first: %s\n", s.unfiled, clip2(s.unfiledCall, 200))
	}
	fmt.Fprintln(w, "not exercised yet: backend replicas (corsgate serve fronts one backend; -replicas), config reload (corsgate serve cannot reload; -reload-every), WebSocket streams (no WebSocket transport)")
	fmt.Fprintf(w, "deadlines: longest overrun %s, by %s (limit %s; probes count from the moment their request was sent)\n", max(s.calls.maxOverrun, 0).Round(time.Millisecond), dash(s.calls.overrunBy), maxDeadlineExtra)

	fmt.Fprintf(w, "\ngateway runtime (from --metrics-listen, idle, right after a GC cycle):\n")
	fmt.Fprintf(w, "  goroutines: baseline %d, after %d, limit %d (baseline + max(10 %%, %d))\n", s.baseline.goroutines, s.after.goroutines, s.goroutineMax, goroutineSlack)
	fmt.Fprintf(w, "  live heap (go_memstats_heap_alloc_bytes after a GC): baseline %s, after %s, limit %s (baseline + max(10 %%, %s))\n", mib(s.baseline.heapAlloc), mib(s.after.heapAlloc), mib(s.heapMax), mib(heapSlack))
	fmt.Fprintf(w, "  heap in use (go_memstats_heap_inuse_bytes, spans with fragmentation; not judged): baseline %s, after %s\n", mib(s.baseline.heapInuse), mib(s.after.heapInuse))
	if !s.sawGC {
		fmt.Fprintln(w, "  (no GC cycle completed before the after figures were read)")
	}

	fmt.Fprintf(w, "\nlogs: gateway %s; backend %s\n", describeLogs(s.gatewayLogs), describeLogs(s.backendLogs))
	writeTop(w, "  gateway", s.gatewayLogs.msgs)
	writeTop(w, "  backend", s.backendLogs.msgs)
	fmt.Fprintf(w, "gateway shutdown: %s\n", dash(s.gatewayExit))

	classes := s.calls.classNames()
	if len(classes) == 0 {
		fmt.Fprintln(w, "\ninvariants: all held")
		return
	}
	fmt.Fprintf(w, "\ninvariants broken: %d\n", s.calls.violations())
	for _, c := range classes {
		fmt.Fprintf(w, "  %s: %d\n", c, s.calls.classes[c])
		for _, e := range s.calls.examples[c] {
			fmt.Fprintf(w, "    - %s\n", strings.ReplaceAll(e, "\n", "\n      "))
		}
	}
}

func describeLogs(l scanned) string {
	var parts []string
	for _, lvl := range []string{"ERROR", "WARN", "INFO"} {
		if n := l.levels[lvl]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, lvl))
		}
	}
	parts = append(parts, fmt.Sprintf("%d panics", l.panics))
	return strings.Join(parts, ", ")
}

// writeTop prints the most frequent warning and error messages.
func writeTop(w io.Writer, who string, msgs map[string]int) {
	type kv struct {
		msg string
		n   int
	}
	var all []kv
	for m, n := range msgs {
		all = append(all, kv{m, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].msg < all[j].msg
	})
	for i, e := range all {
		if i == 5 {
			fmt.Fprintf(w, "%s: … %d more messages\n", who, len(all)-i)
			break
		}
		fmt.Fprintf(w, "%s: %d× %s\n", who, e.n, clip2(e.msg, 140))
	}
}

func firstExamples(t *tally) string {
	var b strings.Builder
	for _, c := range t.classNames() {
		fmt.Fprintf(&b, "\n%s: %s", c, strings.Join(t.examples[c], "; "))
	}
	return b.String()
}

func joinLines(l []string) string { return strings.Join(l, "\n") }

func mib(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
