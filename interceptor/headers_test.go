package interceptor

import (
	"slices"
	"strings"
	"testing"
)

// scanAll runs the scanner to the end.
func scanAll(lines []string) (names []string, over bool) {
	s := newHeaderScanner(lines)
	for {
		n, ok := s.next()
		if !ok {
			break
		}
		names = append(names, n)
	}
	return names, s.over
}

func TestHeaderScanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lines    []string
		want     []string
		wantOver bool
	}{
		{name: "none", lines: nil},
		{name: "browser form", lines: []string{"connect-protocol-version,content-type"}, want: []string{"connect-protocol-version", "content-type"}},
		{name: "spaces and tabs", lines: []string{" Content-Type ,\tX-Grpc-Web\t"}, want: []string{"Content-Type", "X-Grpc-Web"}},
		{name: "empty elements", lines: []string{",,a,, ,b,"}, want: []string{"a", "b"}},
		{name: "several lines", lines: []string{"a", "", "b, c"}, want: []string{"a", "b", "c"}},
		{name: "16 empty elements", lines: []string{strings.Repeat(",", 16)}},
		{name: "17 empty elements over", lines: []string{strings.Repeat(",", 17)}, wantOver: true},
		{name: "1 KiB of commas over", lines: []string{strings.Repeat(",", 1024)}, wantOver: true},
		{name: "malformed kept for the caller", lines: []string{"a, b c"}, want: []string{"a", "b c"}},
		{name: "colon kept for the caller", lines: []string{"x:y"}, want: []string{"x:y"}},
		{name: "64 names ok", lines: []string{strings.Repeat("a,", 64)}, want: slices.Repeat([]string{"a"}, 64)},
		{name: "65 names over", lines: []string{strings.Repeat("a,", 65)}, want: slices.Repeat([]string{"a"}, 64), wantOver: true},
		{name: "too many bytes", lines: []string{strings.Repeat(",", maxRequestHeaderBytes+1)}, wantOver: true},
		{name: "too many bytes over lines", lines: slices.Repeat([]string{strings.Repeat(" ", 300) + "a"}, 14), wantOver: true},
		{name: "too many lines", lines: slices.Repeat([]string{"a"}, maxRequestHeaderLines+1), wantOver: true},
		{name: "1 MiB of commas", lines: []string{strings.Repeat(",", 1<<20)}, wantOver: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, over := scanAll(tt.lines)
			if !slices.Equal(got, tt.want) {
				t.Errorf("names = %q, want %q", got, tt.want)
			}
			if over != tt.wantOver {
				t.Errorf("over = %v, want %v", over, tt.wantOver)
			}
		})
	}
}

func TestHeaderScannerAllocs(t *testing.T) {
	lines := []string{"Connect-Protocol-Version, content-type,, X-Request-Id", "authorization"}
	set := newHeaderSet([]string{"connect-protocol-version", "content-type", "x-request-id", "authorization"})
	allocs := testing.AllocsPerRun(100, func() {
		s := newHeaderScanner(lines)
		for {
			n, ok := s.next()
			if !ok {
				break
			}
			if !set.has(n) {
				t.Fatalf("has(%q) = false", n)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("allocs = %v, want 0", allocs)
	}
}

func TestHeaderSetHas(t *testing.T) {
	t.Parallel()
	set := newHeaderSet([]string{"Content-Type", "x-request-id"})
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "lower", in: "content-type", want: true},
		{name: "canonical", in: "Content-Type", want: true},
		{name: "upper", in: "X-REQUEST-ID", want: true},
		{name: "other", in: "authorization", want: false},
		{name: "prefix", in: "content-typ", want: false},
		{name: "longer", in: "content-type-x", want: false},
		{name: "huge", in: strings.Repeat("a", 10000), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := set.has(tt.in); got != tt.want {
				t.Errorf("has(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseHeaderList compares the scanner with strings.Split on inputs
// within the bounds, and checks the bounds hold on every input.
func FuzzParseHeaderList(f *testing.F) {
	for _, s := range []string{
		"", "a", "a,b", " a , b ", ",,,", "Content-Type,\tX-Grpc-Web", "a b", "x:y", strings.Repeat("a,", 70),
		strings.Repeat(",", 5000), "é", "a,\x00",
	} {
		f.Add(s, "")
		f.Add(s, "b")
	}
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		lines := []string{line1, line2}
		got, over := scanAll(lines)
		if len(got) > maxRequestHeaderNames {
			t.Fatalf("%d names, more than the bound", len(got))
		}
		for _, n := range got {
			if n == "" || strings.Contains(n, ",") || strings.Trim(n, " \t") != n {
				t.Fatalf("name %q is not trimmed", n)
			}
		}
		if len(line1)+len(line2) > maxRequestHeaderBytes {
			if !over {
				t.Fatalf("over = false for %d bytes", len(line1)+len(line2))
			}
			return
		}
		// Reference: split, trim, drop empties, stop at the first non-token.
		var want []string
		wantOver, empty := false, 0
	outer:
		for _, l := range lines {
			if l == "" {
				continue
			}
			elems := strings.Split(l, ",")
			if strings.HasSuffix(l, ",") {
				elems = elems[:len(elems)-1] // a trailing comma ends the list
			}
			for _, e := range elems {
				e = strings.Trim(e, " \t")
				if e == "" {
					if empty++; empty > maxEmptyElements {
						wantOver = true
						break outer
					}
					continue
				}
				if len(want) == maxRequestHeaderNames {
					wantOver = true
					break outer
				}
				want = append(want, e)
			}
		}
		if !slices.Equal(got, want) || over != wantOver {
			t.Fatalf("scan(%q) = %q over=%v, want %q over=%v", lines, got, over, want, wantOver)
		}
	})
}
