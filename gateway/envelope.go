package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"connectrpc.com/connect"
)

// Every wire format the gateway speaks frames messages the same way: a flag
// byte, a big-endian uint32 length and the payload (the gRPC
// Length-Prefixed-Message, Connect's envelope, gRPC-Web's frame). Only the
// meaning of the flags differs.
const (
	headerLen = 5

	flagCompressed = 0x01 // all three formats; the end-stream and trailer flags are internal/wire's
)

// copyBufSize is the size of the pooled buffers used to move bodies.
const copyBufSize = 32 << 10

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func getCopyBuf() *[]byte  { return copyBufPool.Get().(*[]byte) }
func putCopyBuf(b *[]byte) { copyBufPool.Put(b) }

var bytesBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBytesBuf() *bytes.Buffer { return bytesBufPool.Get().(*bytes.Buffer) }

// putBytesBuf returns b to the pool unless it grew past what is worth keeping.
func putBytesBuf(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return
	}
	b.Reset()
	bytesBufPool.Put(b)
}

// tooLarge is the status of a message over the size limit.
func tooLarge(size uint32, limit int) *rpcStatus {
	return errorf(connect.CodeResourceExhausted,
		"message of "+strconv.FormatUint(uint64(size), 10)+" bytes is larger than the limit of "+strconv.Itoa(limit)+" bytes")
}

// badRequestFlags is the status of a request frame with flags a client never
// sends: gRPC knows only the compressed bit, and gRPC-Web's trailers flag
// (0x80) and Connect's end-stream flag (0x02) are for responses only.
func badRequestFlags(flags byte) *rpcStatus {
	const hex = "0123456789abcdef"
	return errorf(connect.CodeInvalidArgument,
		"request frame with flags 0x"+string([]byte{hex[flags>>4], hex[flags&15]})+": clients send only 0x00 or 0x01")
}

// frameScanner follows the frame boundaries of a byte stream passed through
// in arbitrary chunks, without copying, so that a pass-through copy can
// enforce the message size limit and tell whether it stopped between frames.
// The zero value with max set is ready; set request to check a client's
// frames, which may carry no flag but the compressed bit.
type frameScanner struct {
	max       int
	request   bool
	hdr       [headerLen]byte
	hdrN      int    // header bytes seen of the current frame
	remaining uint32 // payload bytes still to come in the current frame
	frames    int    // frames whose header was complete
}

// scan advances over p. It returns a *rpcStatus with RESOURCE_EXHAUSTED when
// a frame header announces more than max bytes, and with INVALID_ARGUMENT
// when a request frame has flags other than the compressed bit.
func (s *frameScanner) scan(p []byte) error {
	for len(p) > 0 {
		if s.remaining > 0 {
			if uint32(len(p)) <= s.remaining {
				s.remaining -= uint32(len(p))
				return nil
			}
			p = p[s.remaining:]
			s.remaining = 0
		}
		n := copy(s.hdr[s.hdrN:], p)
		s.hdrN += n
		p = p[n:]
		if s.hdrN < headerLen {
			return nil
		}
		s.hdrN = 0
		s.frames++
		if s.request && s.hdr[0]&^flagCompressed != 0 {
			return badRequestFlags(s.hdr[0])
		}
		size := binary.BigEndian.Uint32(s.hdr[1:])
		if s.max > 0 && int64(size) > int64(s.max) {
			return tooLarge(size, s.max)
		}
		s.remaining = size
	}
	return nil
}

// atBoundary reports whether everything scanned so far ends at a frame
// boundary.
func (s *frameScanner) atBoundary() bool { return s.hdrN == 0 && s.remaining == 0 }

// scanningReader passes r through, checking frames with a frameScanner. The
// first error of the scanner is sticky and also kept in err, so that the
// gateway can tell a refused request from a failed backend. With whole set,
// it reads frame by frame instead, to check decompressed sizes.
type scanningReader struct {
	r       io.Reader
	scanner frameScanner
	whole   *wholeFrames
	mu      sync.Mutex
	err     *rpcStatus
}

// wholeFrames is the frame-by-frame mode of scanningReader.
type wholeFrames struct {
	fr      frameReader
	max     int
	payload bytes.Buffer
	out     []byte
	pending []byte
}

func (s *scanningReader) fail(st *rpcStatus) error {
	s.mu.Lock()
	s.err = st
	s.mu.Unlock()
	return st
}

func (s *scanningReader) readWhole(p []byte) (int, error) {
	w := s.whole
	for len(w.pending) == 0 {
		flags, err := w.fr.next(&w.payload)
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		var st *rpcStatus
		switch {
		case errors.As(err, &st):
			return 0, s.fail(st)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return 0, s.fail(errorf(connect.CodeInvalidArgument, "request body ends inside a message"))
		case err != nil:
			return 0, err
		}
		if flags&flagCompressed != 0 {
			if st := checkGzipSize(w.payload.Bytes(), w.max); st != nil {
				return 0, s.fail(st)
			}
		}
		w.out = appendFrameHeader(w.out[:0], flags, w.payload.Len())
		w.out = append(w.out, w.payload.Bytes()...)
		w.pending = w.out
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

func (s *scanningReader) Read(p []byte) (int, error) {
	if st := s.status(); st != nil {
		return 0, st
	}
	if s.whole != nil {
		return s.readWhole(p)
	}
	n, err := s.r.Read(p)
	if n > 0 {
		if serr := s.scanner.scan(p[:n]); serr != nil {
			st := serr.(*rpcStatus) //nolint:errcheck // scan returns only *rpcStatus
			s.mu.Lock()
			s.err = st
			s.mu.Unlock()
			return 0, st
		}
	}
	if errors.Is(err, io.EOF) && !s.scanner.atBoundary() {
		st := errorf(connect.CodeInvalidArgument, "request body ends inside a message")
		s.mu.Lock()
		s.err = st
		s.mu.Unlock()
		return n, st
	}
	return n, err
}

// status is the refusal the reader made, if any; safe to call while another
// goroutine reads.
func (s *scanningReader) status() *rpcStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// frameReader reads whole frames. With request set it refuses frames with
// flags other than the compressed bit, as frameScanner does.
type frameReader struct {
	r       io.Reader
	max     int
	request bool
	// share, when not nil, is charged for the buffer's growth.
	share *share
	hdr   [headerLen]byte
}

// next reads one frame's payload into buf (which it resets). At a clean end
// of stream it returns io.EOF; a stream cut inside a frame gives
// io.ErrUnexpectedEOF; a frame over max gives RESOURCE_EXHAUSTED; a request
// frame with other flags than the compressed bit gives INVALID_ARGUMENT.
func (f *frameReader) next(buf *bytes.Buffer) (flags byte, err error) {
	buf.Reset()
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return 0, err // io.EOF when nothing was read
	}
	if f.request && f.hdr[0]&^flagCompressed != 0 {
		return 0, badRequestFlags(f.hdr[0])
	}
	size := binary.BigEndian.Uint32(f.hdr[1:])
	if f.max > 0 && int64(size) > int64(f.max) {
		return 0, tooLarge(size, f.max)
	}
	// The buffer grows as the payload arrives, never from the size the
	// header declares.
	if err := readFrame(f.r, buf, int(size), f.share); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("frame cut after %d of %d bytes: %w", buf.Len(), size, io.ErrUnexpectedEOF)
		}
		return 0, err
	}
	return f.hdr[0], nil
}

// appendFrameHeader appends a frame header for a payload of size bytes.
func appendFrameHeader(dst []byte, flags byte, size int) []byte {
	return append(dst, flags, byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
}
