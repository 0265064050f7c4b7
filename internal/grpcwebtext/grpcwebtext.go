// Package grpcwebtext is the base64 layer of gRPC-Web text mode
// (application/grpc-web-text[+proto]): the whole binary gRPC-Web stream,
// request and response, carried in base64.
//
// Clients send and accept a body made of several base64 chunks, each
// padded on its own (grpc-web JS encodes every chunk it sends, and decodes
// the response in 4-character groups), so [Reader] accepts padding inside
// the body, and [Encoder] may pad wherever the writer flushes.
package grpcwebtext

import (
	"bytes"
	"encoding/base64"
	"io"
)

// readSize is how much undecoded input a [Reader] reads at a time.
const readSize = 8 << 10

// CorruptError is the error a [Reader] returns for a body that is not
// base64 (a character outside the standard alphabet, or padding in the
// wrong place).
type CorruptError struct {
	Err error // the [base64.CorruptInputError]
}

func (e *CorruptError) Error() string {
	return "gRPC-Web text body is not base64: " + e.Err.Error()
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Reader decodes a gRPC-Web text request body as it streams: base64 in
// which every chunk the client sent may carry its own padding, with ASCII
// whitespace ignored. Its memory is bounded by the read size, not by the
// body. It returns a [*CorruptError] for invalid base64, and
// [io.ErrUnexpectedEOF] when the body ends inside a 4-character group;
// errors of the underlying reader pass through. A Reader is not safe for
// concurrent use.
type Reader struct {
	r       io.Reader
	in      []byte // undecoded characters, whitespace removed
	out     []byte // decoded bytes not yet returned
	readBuf []byte
	err     error
}

// NewReader returns a Reader decoding r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, readBuf: make([]byte, readSize)}
}

// Read implements [io.Reader].
func (b *Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			if b.err == io.EOF && len(b.in) > 0 {
				b.err = io.ErrUnexpectedEOF
			}
			return 0, b.err
		}
		n, err := b.r.Read(b.readBuf)
		for _, ch := range b.readBuf[:n] {
			switch ch {
			case ' ', '\t', '\r', '\n':
			default:
				b.in = append(b.in, ch)
			}
		}
		if err != nil {
			b.err = err
		}
		if derr := b.decode(); derr != nil {
			b.err = derr
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// decode moves every complete 4-character group of in to out. A group with
// padding ends a segment; the next group starts afresh.
func (b *Reader) decode() error {
	full := len(b.in) / 4 * 4
	if full == 0 {
		return nil
	}
	b.out = b.out[:0]
	src := b.in[:full]
	for len(src) > 0 {
		end := len(src)
		if i := bytes.IndexByte(src, '='); i >= 0 {
			end = (i/4 + 1) * 4
		}
		seg := src[:end]
		start := len(b.out)
		b.out = append(b.out, make([]byte, base64.StdEncoding.DecodedLen(len(seg)))...)
		n, err := base64.StdEncoding.Decode(b.out[start:], seg)
		if err != nil {
			// Drop the segment: Decode has written into all of it,
			// zeros included, and none of it may reach the caller.
			b.out = b.out[:start]
			return &CorruptError{Err: err}
		}
		b.out = b.out[:start+n]
		src = src[end:]
	}
	b.in = append(b.in[:0], b.in[full:]...)
	return nil
}

// encodeChunk is how many input bytes an [Encoder] encodes per write to the
// underlying writer (a multiple of 3).
const encodeChunk = 3 << 10

// Encoder encodes a gRPC-Web text response as it streams, as improbable's
// grpcweb wrapper does with [base64.NewEncoder]: each Write encodes its
// complete 3-byte groups and keeps the rest (at most 2 bytes) for the next
// Write; [Encoder.Close] writes the rest with padding, after which the
// Encoder starts a new base64 chunk. gRPC-Web text clients decode such
// concatenated padded chunks. Its memory is a fixed buffer. The zero
// Encoder is not usable; an Encoder is not safe for concurrent use.
type Encoder struct {
	w    io.Writer
	rem  [3]byte // rem[:nrem]: bytes held back, at most 2 between writes
	nrem int
	buf  [encodeChunk / 3 * 4]byte
}

// NewEncoder returns an Encoder writing base64 to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: w}
}

// Write encodes p. It reports len(p) unless the underlying writer fails.
func (e *Encoder) Write(p []byte) (int, error) {
	n := len(p)
	if e.nrem > 0 {
		for e.nrem < 3 && len(p) > 0 {
			e.rem[e.nrem] = p[0]
			e.nrem++
			p = p[1:]
		}
		if e.nrem < 3 {
			return n, nil
		}
		e.nrem = 0
		base64.StdEncoding.Encode(e.buf[:4], e.rem[:])
		if _, err := e.w.Write(e.buf[:4]); err != nil {
			return 0, err
		}
	}
	for len(p) >= 3 {
		m := min(len(p)/3*3, encodeChunk)
		base64.StdEncoding.Encode(e.buf[:], p[:m])
		if _, err := e.w.Write(e.buf[:m/3*4]); err != nil {
			return 0, err
		}
		p = p[m:]
	}
	e.nrem = copy(e.rem[:], p)
	return n, nil
}

// Close writes the bytes held back, padded, ending the current base64
// chunk. It writes nothing when none are held. The Encoder stays usable.
func (e *Encoder) Close() error {
	if e.nrem == 0 {
		return nil
	}
	base64.StdEncoding.Encode(e.buf[:4], e.rem[:e.nrem])
	e.nrem = 0
	_, err := e.w.Write(e.buf[:4])
	return err
}

// WriteChunk writes p to w as one padded base64 chunk, in buf's space
// (grown as needed and returned for reuse): what a writer whose every write
// is a whole gRPC-Web frame sends, since clients decode such concatenated
// chunks. [Encoder] is the streaming form, for writes of any size.
func WriteChunk(w io.Writer, p, buf []byte) ([]byte, error) {
	n := base64.StdEncoding.EncodedLen(len(p))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	base64.StdEncoding.Encode(buf, p)
	_, err := w.Write(buf)
	return buf, err
}
