package wire

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// FuzzGRPCTimeout checks the grpc-timeout parser and encoder: no panic,
// values the spec allows (1 to 8 digits and a unit) parse, a refusal is
// INVALID_ARGUMENT, a parsed value is never negative, and every encoded
// duration parses back to at least the duration (never an earlier
// deadline).
func FuzzGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1S", "99999999H", "100000000H", "0n", "5m", "-1S", "1", "S", "1s", "1.5S", "+1S", "00000001u"} {
		f.Add(s, int64(time.Second))
	}
	f.Add("", int64(-1))
	f.Add("", int64(1<<63-1))
	f.Fuzz(func(t *testing.T, v string, d int64) {
		got, st := ParseGRPCTimeout(v)
		valid := len(v) >= 2 && len(v) <= 9 && strings.Trim(v[:len(v)-1], "0123456789") == "" && strings.ContainsRune("HMSmun", rune(v[len(v)-1]))
		if valid && st != nil {
			t.Fatalf("ParseGRPCTimeout(%q) refused a value the spec allows: %v", v, st)
		}
		if st != nil && st.Code != connect.CodeInvalidArgument {
			t.Fatalf("code %v", st.Code)
		}
		if st == nil && got < 0 {
			t.Fatalf("ParseGRPCTimeout(%q) = %v, negative", v, got)
		}
		dur := time.Duration(d)
		enc := EncodeGRPCTimeout(dur)
		back, st := ParseGRPCTimeout(enc)
		if st != nil {
			t.Fatalf("EncodeGRPCTimeout(%v) = %q, which does not parse: %v", dur, enc, st)
		}
		if dur > 0 && back < dur && enc != "99999999H" {
			t.Fatalf("EncodeGRPCTimeout(%v) = %q = %v, an earlier deadline", dur, enc, back)
		}
	})
}

// FuzzPercentEncoding checks grpc-message escaping: encoding gives printable
// ASCII without a bare '%', decoding gives the original back, and decoding
// arbitrary input never panics.
func FuzzPercentEncoding(f *testing.F) {
	for _, s := range []string{"", "plain", "100%", "é", "a\r\nb", "%zz", "%4", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := PercentEncode(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c < ' ' || c > '~' {
				t.Fatalf("PercentEncode(%q) = %q has byte %#x", s, enc, c)
			}
		}
		if dec := PercentDecode(enc); dec != s {
			t.Fatalf("PercentDecode(PercentEncode(%q)) = %q", s, dec)
		}
		_ = PercentDecode(s)
	})
}
