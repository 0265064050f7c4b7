package grpcwebtext

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunks splits b at the sizes in cuts (0 taken as 1), the rest last.
func chunks(b []byte, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		n := max(int(c), 1)
		if n >= len(b) {
			break
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// chunkReader returns its chunks one per Read.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func TestReader(t *testing.T) {
	t.Parallel()
	enc := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr error // nil, io.ErrUnexpectedEOF, or a *CorruptError
	}{
		{name: "empty", body: "", want: ""},
		{name: "one chunk", body: enc([]byte("hello, world")), want: "hello, world"},
		{name: "padded chunks", body: enc([]byte("a")) + enc([]byte("bc")) + enc([]byte("def")), want: "abcdef"},
		{name: "whitespace", body: " QU\r\nJD\tRA==\n", want: "ABCD"},
		{name: "cut mid-group", body: "QUJD" + "RA", want: "ABC", wantErr: io.ErrUnexpectedEOF},
		{name: "not base64", body: "!!!!", wantErr: &CorruptError{}},
		{name: "base64url alphabet", body: strings.Repeat("-_-_", 4), wantErr: &CorruptError{}},
		{name: "padding mid-group", body: "A=AAQUJD", wantErr: &CorruptError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range []io.Reader{strings.NewReader(tt.body), iotest.OneByteReader(strings.NewReader(tt.body))} {
				got, err := io.ReadAll(NewReader(r))
				if string(got) != tt.want {
					t.Errorf("decoded %q, want %q", got, tt.want)
				}
				var ce *CorruptError
				switch tt.wantErr.(type) {
				case nil:
					if err != nil {
						t.Errorf("error %v, want none", err)
					}
				case *CorruptError:
					if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "gRPC-Web text body is not base64: ") {
						t.Errorf("error %v, want a CorruptError", err)
					}
				default:
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("error %v, want %v", err, tt.wantErr)
					}
				}
			}
		})
	}
}

// TestReaderUnderlyingError: errors of the underlying reader pass through.
func TestReaderUnderlyingError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := io.ReadAll(NewReader(iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
}

// TestEncoder: whatever the write sizes, the output is the standard
// encoding of everything, and a Close between writes starts a new padded
// chunk.
func TestEncoder(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*encodeChunk+7)
	for i := range data {
		data[i] = byte(i * 7)
	}
	tests := []struct {
		name  string
		sizes []int
		close map[int]bool // Close after the write at this index
		want  string
	}{
		{name: "one write", sizes: []int{len(data)}, want: base64.StdEncoding.EncodeToString(data)},
		{name: "byte by byte prefix", sizes: []int{1, 1, 1, 1, 1, len(data) - 5}, want: base64.StdEncoding.EncodeToString(data)},
		{name: "odd sizes", sizes: []int{2, 5, 4096, 1, len(data) - 4104}, want: base64.StdEncoding.EncodeToString(data)},
		{
			name:  "close between writes",
			sizes: []int{1, 5, len(data) - 6},
			close: map[int]bool{0: true, 1: true},
			want: base64.StdEncoding.EncodeToString(data[:1]) + base64.StdEncoding.EncodeToString(data[1:6]) +
				base64.StdEncoding.EncodeToString(data[6:]),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			e := NewEncoder(&out)
			rest := data
			for i, n := range tt.sizes {
				if m, err := e.Write(rest[:n]); m != n || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
				}
				rest = rest[n:]
				if tt.close[i] {
					if err := e.Close(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("encoded %d characters, want %d; differ", out.Len(), len(tt.want))
			}
			got, err := io.ReadAll(NewReader(&out))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("round trip: %d bytes, %v", len(got), err)
			}
		})
	}
}

// FuzzReader: a body of separately padded chunks, with whitespace, read in
// arbitrary pieces, decodes to the chunks, and the Encoder gives the
// standard encoding whatever the write sizes; arbitrary text decodes like
// the standard decoder or fails with a CorruptError or an unexpected EOF.
func FuzzReader(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{3, 1}, []byte{2}, "AAAA")
	f.Add([]byte{}, []byte{}, []byte{}, "!!!!")
	f.Add([]byte{0, 0, 0, 0, 1, 'x'}, []byte{0, 4}, []byte{0}, "AA==AA==")
	f.Add([]byte("x"), []byte{0}, []byte{1}, "-_-_QUJD")
	f.Fuzz(func(t *testing.T, payload, cuts, reads []byte, junk string) {
		var body strings.Builder
		for i, c := range chunks(payload, cuts) {
			body.WriteString(base64.StdEncoding.EncodeToString(c))
			if i%3 == 1 {
				body.WriteString("\r\n")
			}
		}
		got, err := io.ReadAll(NewReader(&chunkReader{chunks: chunks([]byte(body.String()), reads)}))
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("decode(%q) = %q, %v; want %q", body.String(), got, err, payload)
		}
		var enc bytes.Buffer
		e := NewEncoder(&enc)
		for _, c := range chunks(payload, cuts) {
			_, _ = e.Write(c)
		}
		_ = e.Close()
		if want := base64.StdEncoding.EncodeToString(payload); enc.String() != want {
			t.Fatalf("encode = %q, want %q", enc.String(), want)
		}

		got, err = io.ReadAll(NewReader(&chunkReader{chunks: chunks([]byte(junk), reads)}))
		stripped := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, junk)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("decode(%q): error %v, want a CorruptError or an unexpected EOF", junk, err)
			}
			return
		}
		if want, werr := base64.StdEncoding.DecodeString(stripped); werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decode(%q) = %q, the standard decoder gives %q", junk, got, want)
		}
	})
}

// TestWriteChunk checks that whole frames written as padded chunks decode,
// concatenated, with the streaming Reader, as clients decode them.
func TestWriteChunk(t *testing.T) {
	var out bytes.Buffer
	var buf []byte
	frames := [][]byte{{0, 0, 0, 0, 1, 'a'}, {0x80, 0, 0, 0, 3, 'x', ':', 'y'}, {1}}
	for _, f := range frames {
		var err error
		if buf, err = WriteChunk(&out, f, buf); err != nil {
			t.Fatal(err)
		}
	}
	got, err := io.ReadAll(NewReader(&out))
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(frames, nil); !bytes.Equal(got, want) {
		t.Errorf("decoded %q, want %q", got, want)
	}
}
