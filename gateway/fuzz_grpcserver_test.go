package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// hardGzip compresses p.
func hardGzip(tb testing.TB, p []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(p)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// FuzzBackendFrames feeds arbitrary bytes, cut at arbitrary places, to the
// reader of backend messages of GRPCServer, and checks it against a plain
// reading of the same bytes: the same messages, decompressed, in order; an
// error exactly when the bytes end inside a frame, a frame is over the
// limit, or a compressed one does not decompress within it.
func FuzzBackendFrames(f *testing.F) {
	frame := func(flags byte, p []byte) []byte { return append(appendFrameHeader(nil, flags, len(p)), p...) }
	f.Add(frame(0, []byte("hello")), []byte{2, 3})
	f.Add(append(frame(0, nil), frame(0, bytes.Repeat([]byte("x"), 300))...), []byte{0})
	f.Add(frame(1, hardGzip(f, []byte("zipped"))), []byte{7})
	f.Add(frame(1, hardGzip(f, bytes.Repeat([]byte("z"), 5000))), []byte{})
	f.Add([]byte{0, 0, 0, 1}, []byte{})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff}, []byte{})
	const limit = 1024
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		var want [][]byte
		var wantErr bool
		for rest := data; len(rest) > 0; {
			if len(rest) < headerLen {
				wantErr = true
				break
			}
			size := binary.BigEndian.Uint32(rest[1:headerLen])
			if size > limit || int(size) > len(rest)-headerLen {
				wantErr = true
				break
			}
			payload := rest[headerLen : headerLen+int(size)]
			if rest[0]&flagCompressed != 0 {
				zr, err := gzip.NewReader(bytes.NewReader(payload))
				if err != nil {
					wantErr = true
					break
				}
				plain, err := io.ReadAll(io.LimitReader(zr, limit+1))
				if err != nil || len(plain) > limit {
					wantErr = true
					break
				}
				payload = plain
			}
			want = append(want, payload)
			rest = rest[headerLen+int(size):]
		}
		fr := backendFrames{r: &chunkReader{chunks: hardChunks(data, cuts)}, max: limit, encoding: "gzip"}
		var got [][]byte
		var err error
		for {
			var m *sendFrame
			if m, err = fr.next(); err != nil {
				break
			}
			got = append(got, m.data.Materialize())
			m.data.Free()
		}
		if errors.Is(err, io.EOF) != !wantErr {
			t.Fatalf("error %v, want an error: %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d messages, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d: %q, want %q", i, got[i], want[i])
			}
		}
	})
}

// chunkReader returns its chunks one Read at a time.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}
