package interceptor

import (
	"fmt"
	"strings"
	"testing"
)

func TestStrIndexFind(t *testing.T) {
	t.Parallel()
	// Keys of every length class the lookup treats differently (0-3, 4-7,
	// 8-16, 17-24, longer), and pairs that share their first and last
	// eight bytes or their length, so only the middle tells them apart.
	keys := []string{
		"a", "ab", "abc", "abcd", "abcdefg", "abcdefgh", "content-type", "abcdefgh12345678",
		"abcdefgh-1-12345678", "abcdefgh-2-12345678", "connect-protocol-version",
		"/greet.v1.GreetService/Greet", "/greet.v1.GreetService/GreeT", "https://app.example.com",
		strings.Repeat("x", 100) + "1" + strings.Repeat("x", 100),
	}
	tests := []struct {
		name string
		fold bool
		in   string
		want int
	}{
		{name: "short", in: "a", want: 0},
		{name: "three", in: "abc", want: 2},
		{name: "four", in: "abcd", want: 3},
		{name: "seven", in: "abcdefg", want: 4},
		{name: "eight", in: "abcdefgh", want: 5},
		{name: "sixteen", in: "abcdefgh12345678", want: 7},
		{name: "middle tells apart 1", in: "abcdefgh-1-12345678", want: 8},
		{name: "middle tells apart 2", in: "abcdefgh-2-12345678", want: 9},
		{name: "middle differs", in: "abcdefgh-3-12345678", want: -1},
		{name: "24 bytes", in: "connect-protocol-version", want: 10},
		{name: "long", in: "/greet.v1.GreetService/Greet", want: 11},
		{name: "long case kept", in: "/greet.v1.GreetService/GreeT", want: 12},
		{name: "origin", in: "https://app.example.com", want: 13},
		{name: "very long", in: strings.Repeat("x", 100) + "1" + strings.Repeat("x", 100), want: 14},
		{name: "very long middle differs", in: strings.Repeat("x", 100) + "2" + strings.Repeat("x", 100), want: -1},
		{name: "empty", in: "", want: -1},
		{name: "prefix", in: "abcdefgh1234567", want: -1},
		{name: "case differs", in: "Content-Type", want: -1},
		{name: "fold canonical", fold: true, in: "Content-Type", want: 6},
		{name: "fold upper 24", fold: true, in: "CONNECT-PROTOCOL-VERSION", want: 10},
		{name: "fold middle differs", fold: true, in: "ABCDEFGH-3-12345678", want: -1},
		{name: "fold very long", fold: true, in: strings.Repeat("X", 100) + "1" + strings.Repeat("X", 100), want: 14},
		{name: "fold not punctuation", fold: true, in: "content_type", want: -1},
		{name: "fold not non-ASCII", fold: true, in: "content-typ\xc5", want: -1},
	}
	indexes := map[bool]strIndex{false: newStrIndex(keys, false), true: newStrIndex(keys, true)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idx := indexes[tt.fold]
			if got := idx.find(tt.in); got != tt.want {
				t.Errorf("find(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestStrIndexEmptyAndLarge(t *testing.T) {
	t.Parallel()
	var zero strIndex
	if got := zero.find("a"); got != -1 {
		t.Errorf("zero index find = %d, want -1", got)
	}
	if got := newStrIndex(nil, true); got.find("") != -1 {
		t.Errorf("empty index finds the empty string")
	}
	// Many keys: no perfect seed exists, so lookups go through probing.
	var keys []string
	for i := range 3000 {
		keys = append(keys, fmt.Sprintf("https://host-%d.example.com", i))
	}
	idx := newStrIndex(keys, false)
	for i, k := range keys {
		if got := idx.find(k); got != i {
			t.Fatalf("find(%q) = %d, want %d", k, got, i)
		}
	}
	if got := idx.find("https://host-3000.example.com"); got != -1 {
		t.Errorf("find of a missing key = %d, want -1", got)
	}
	dup := newStrIndex([]string{"x-a", "X-A", "x-b"}, true)
	if got := dup.find("x-a"); got != 0 {
		t.Errorf("duplicate keeps position %d, want 0", got)
	}
}

func TestStrIndexAllocs(t *testing.T) {
	idx := newStrIndex([]string{"content-type", "connect-protocol-version", "x-request-id"}, true)
	if n := testing.AllocsPerRun(100, func() {
		if idx.find("Connect-Protocol-Version") != 1 {
			t.Fatal("not found")
		}
	}); n != 0 {
		t.Errorf("allocs = %v, want 0", n)
	}
}

// FuzzStrIndex compares lookups with a map: keys are the comma-separated
// parts of the first input, the query is the second.
func FuzzStrIndex(f *testing.F) {
	f.Add("content-type,x-grpc-web,authorization", "Content-Type", true)
	f.Add("/a.B/C,/a.B/D", "/a.B/D", false)
	f.Add("abcdefgh-1-12345678,abcdefgh-2-12345678", "abcdefgh-2-12345678", false)
	f.Add("a,,b", "", true)
	f.Fuzz(func(t *testing.T, list, query string, fold bool) {
		keys := strings.Split(list, ",")
		want := map[string]int{}
		for i, k := range keys {
			if fold {
				k = toLowerASCII(k)
			}
			if _, dup := want[k]; !dup {
				want[k] = i
			}
		}
		q := query
		if fold {
			q = toLowerASCII(q)
		}
		w, ok := want[q]
		if !ok {
			w = -1
		}
		idx := newStrIndex(keys, fold)
		if got := idx.find(query); got != w {
			t.Fatalf("find(%q) in %q (fold %v) = %d, want %d", query, keys, fold, got, w)
		}
		for k, i := range want {
			if got := idx.find(k); got != i {
				t.Fatalf("find(%q) in %q (fold %v) = %d, want %d", k, keys, fold, got, i)
			}
		}
	})
}

func TestIndexComma(t *testing.T) {
	t.Parallel()
	for n := range 40 {
		for at := 0; at <= n; at++ {
			b := []byte(strings.Repeat("a", n))
			if at < n {
				b[at] = ','
			}
			s := string(b)
			if got, want := indexComma(s), at; got != want {
				t.Errorf("indexComma(%q) = %d, want %d", s, got, want)
			}
		}
	}
	// Bytes that trip naive zero-byte tests: 0x2d after a match, high bytes.
	for _, s := range []string{"\xac\xac\xac\xac\xac\xac\xac\xac,", "-,-------", "\x2c\x2d\x2b\x00\xff,,,", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7"} {
		want := strings.IndexByte(s, ',')
		if want < 0 {
			want = len(s)
		}
		if got := indexComma(s); got != want {
			t.Errorf("indexComma(%q) = %d, want %d", s, got, want)
		}
	}
}

// checkHeadersReference is checkHeaders without its single-line fast path:
// the scanner alone.
func checkHeadersReference(rt *route, lines []string) bool {
	s := newHeaderScanner(lines)
	for {
		name, ok := s.next()
		if !ok {
			break
		}
		if rt.allowed.has(name) {
			continue
		}
		if !validToken(name) || !rt.anyHeader || strings.EqualFold(name, "authorization") {
			return false
		}
	}
	return !s.over
}

// FuzzCheckHeaders holds checkHeaders (with its fast path for the line
// browsers send) to the verdict of the scanner alone.
func FuzzCheckHeaders(f *testing.F) {
	for _, s := range []string{
		"connect-protocol-version,content-type", "authorization,x-request-id", "content-type,", ",content-type",
		"content-type, x-grpc-web", "Content-Type,X-Grpc-Web", "content-type,x-secret", strings.Repeat("content-type,", 70),
		strings.Repeat(",", 20), "content-type,,x-grpc-web", "content-type\t", "x:y",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	p := mustNew(f, WithAllowedOrigins(appOrigin))
	pAny := mustNew(f, WithAllowedOrigins(appOrigin), WithAllowedHeaders("*"))
	table := greetTable(f)
	rt := p.Handler(table, noop).(*handler).route(pathGreet)
	rtAny := pAny.Handler(table, noop).(*handler).route(pathGreet)
	f.Fuzz(func(t *testing.T, line string, anyHeader bool) {
		r := rt
		if anyHeader {
			r = rtAny
		}
		lines := []string{line}
		_, got := r.checkHeaders(lines)
		if want := checkHeadersReference(r, lines); got != want {
			t.Fatalf("checkHeaders(%q) = %v, the scanner says %v", line, got, want)
		}
	})
}
