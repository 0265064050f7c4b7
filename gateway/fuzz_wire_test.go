package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

// hardChunks cuts data into pieces whose sizes come from cuts (1 to 256 bytes
// each, cycling), as a network would deliver it.
func hardChunks(data, cuts []byte) [][]byte {
	var out [][]byte
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if len(cuts) > 0 {
			n = min(int(cuts[i%len(cuts)])+1, len(data))
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// FuzzFrameScanner feeds arbitrary bytes, cut at arbitrary places, to the
// frame scanner that guards pass-through bodies and compares it with a
// plain frame-by-frame parse: the same refusal of an oversized frame at the
// same frame, the same frame count and the same boundary verdict.
func FuzzFrameScanner(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 3, 'a', 'b', 'c'}, []byte{0}, uint16(16))
	f.Add([]byte{0, 0, 0, 0, 3, 'a', 'b'}, []byte{2, 0}, uint16(16))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff}, []byte{}, uint16(16))
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}, []byte{3}, uint16(1))
	f.Add([]byte{0, 0, 0}, []byte{0}, uint16(0))
	f.Add(bytes.Repeat([]byte{0, 0, 0, 0, 0}, 50), []byte{4, 7, 1}, uint16(0))
	f.Fuzz(func(t *testing.T, data, cuts []byte, max uint16) {
		limit := int(max)
		sc := frameScanner{max: limit}
		var gotErr error
		for _, c := range hardChunks(data, cuts) {
			if gotErr = sc.scan(c); gotErr != nil {
				break
			}
		}
		// Reference.
		var wantErr bool
		frames, rest := 0, data
		for len(rest) >= headerLen {
			size := binary.BigEndian.Uint32(rest[1:headerLen])
			frames++
			if limit > 0 && int64(size) > int64(limit) {
				wantErr = true
				break
			}
			rest = rest[headerLen:]
			if uint64(len(rest)) < uint64(size) {
				rest = nil
				frames = -frames // ends inside this frame
				break
			}
			rest = rest[size:]
		}
		if (gotErr != nil) != wantErr {
			t.Fatalf("scan error %v, reference says refused=%v", gotErr, wantErr)
		}
		if gotErr != nil {
			var st *rpcStatus
			if !errors.As(gotErr, &st) || st.Code != connect.CodeResourceExhausted {
				t.Fatalf("refusal %v, want RESOURCE_EXHAUSTED", gotErr)
			}
			return
		}
		wantBoundary := frames >= 0 && len(rest) == 0
		if sc.atBoundary() != wantBoundary {
			t.Fatalf("atBoundary %v, want %v (frames %d, %d bytes left)", sc.atBoundary(), wantBoundary, frames, len(rest))
		}
		if frames < 0 {
			frames = -frames
		}
		if sc.frames != frames {
			t.Fatalf("%d frames, want %d", sc.frames, frames)
		}
	})
}

// hardChunkReader returns the chunks of a body, at most one per Read.
type hardChunkReader struct{ chunks [][]byte }

func (c *hardChunkReader) Read(p []byte) (int, error) {
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

// FuzzBase64Reader checks the gRPC-Web text request decoder. A body made of
// chunks each base64-encoded on its own (padding included, as grpc-web JS
// sends), with whitespace sprinkled in and delivered in arbitrary reads,
// must decode to the concatenated chunks; arbitrary text must either decode
// like the standard decoder on the whitespace-free text or fail with
// INVALID_ARGUMENT (or an unexpected EOF for a cut group), never panic.
func FuzzBase64Reader(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{3, 1}, []byte{2}, "AAAA")
	f.Add([]byte{}, []byte{}, []byte{}, "!!!!")
	f.Add([]byte{0, 0, 0, 0, 1, 'x'}, []byte{0, 4}, []byte{0}, "AA==AA==")
	f.Add([]byte("x"), []byte{0}, []byte{1}, "QQ\r\n==")
	f.Fuzz(func(t *testing.T, payload, cuts, reads []byte, junk string) {
		// Well-formed: per-chunk encoding plus whitespace.
		var body strings.Builder
		for i, c := range hardChunks(payload, cuts) {
			body.WriteString(base64.StdEncoding.EncodeToString(c))
			if i%3 == 1 {
				body.WriteString("\r\n")
			}
		}
		got, err := io.ReadAll(newBase64Reader(&hardChunkReader{chunks: hardChunks([]byte(body.String()), reads)}))
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("decode(%q) = %q, %v; want %q", body.String(), got, err, payload)
		}

		// Arbitrary text.
		got, err = io.ReadAll(newBase64Reader(&hardChunkReader{chunks: hardChunks([]byte(junk), reads)}))
		stripped := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, junk)
		if err != nil {
			var st *rpcStatus
			if !errors.As(err, &st) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("decode(%q): error %v, want INVALID_ARGUMENT or an unexpected EOF", junk, err)
			}
			if st != nil && st.Code != connect.CodeInvalidArgument {
				t.Fatalf("decode(%q): code %v", junk, st.Code)
			}
			return
		}
		if want, werr := base64.StdEncoding.DecodeString(stripped); werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decode(%q) = %q, the standard decoder gives %q", junk, got, want)
		}
	})
}
