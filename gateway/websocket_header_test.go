package gateway

import (
	"strings"
	"testing"
)

// FuzzWebSocketHeaderMessage: the header message parser never panics, stays
// within its line bound, and hands over only token names and values without
// control characters or surrounding spaces.
func FuzzWebSocketHeaderMessage(f *testing.F) {
	f.Add([]byte("content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n"))
	f.Add([]byte("authorization: Bearer a, b\nx-request-id:  7 \r\n\r\n"))
	f.Add([]byte("no colon\r\n"))
	f.Add([]byte(": empty name\r\n"))
	f.Add([]byte("bad name: v\r\n"))
	f.Add([]byte("a: \x00\r\n"))
	f.Add([]byte(strings.Repeat("a: b\r\n", maxHeaderLines+1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := parseHeaderMessage(b, func(name, value string) {
			n++
			if name == "" {
				t.Fatal("empty name")
			}
			for i := 0; i < len(name); i++ {
				if !tokenByte[name[i]] {
					t.Fatalf("name %q", name)
				}
			}
			if strings.Trim(value, " \t") != value {
				t.Fatalf("value %q keeps its spaces", value)
			}
			for i := 0; i < len(value); i++ {
				if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
					t.Fatalf("value %q", value)
				}
			}
		})
		if n > maxHeaderLines {
			t.Fatalf("%d lines handed over", n)
		}
		_ = err
	})
}

func TestParseHeaderMessage(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "improbable's client", in: "content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n", want: "content-type=application/grpc-web+proto;x-grpc-web=1;"},
		{name: "bare newlines and blank lines", in: "a: 1\n\nb:2", want: "a=1;b=2;"},
		{name: "joined values stay one", in: "x: a, b\r\n", want: "x=a, b;"},
		{name: "no colon", in: "nocolon\r\n", wantErr: true},
		{name: "space in name", in: "a b: c\r\n", wantErr: true},
		{name: "control in value", in: "a: \x01\r\n", wantErr: true},
		{name: "too many lines", in: strings.Repeat("a: b\r\n", maxHeaderLines+1), wantErr: true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			var got strings.Builder
			err := parseHeaderMessage([]byte(row.in), func(n, v string) { got.WriteString(n + "=" + v + ";") })
			if (err != nil) != row.wantErr {
				t.Fatalf("err %v, want error %v", err, row.wantErr)
			}
			if !row.wantErr && got.String() != row.want {
				t.Fatalf("got %q, want %q", got.String(), row.want)
			}
		})
	}
}
