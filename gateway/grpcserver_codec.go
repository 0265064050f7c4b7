package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// rawCodec is the codec of [Gateway.GRPCServer]: messages stay the bytes
// they are. A client's message is copied into a gRPC frame (a *recvFrame),
// ready for the backend request; a backend's message (a *sendFrame) goes
// to the client in the pooled buffers it was read into, which grpc-go frees
// once written. Other values (the health service's) use the proto codec.
type rawCodec struct{}

var protoCodec = encoding.GetCodecV2(protocodec.Name)

func (rawCodec) Name() string { return "corsgate-raw" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*sendFrame); ok {
		return m.data, nil
	}
	return protoCodec.Marshal(v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *recvFrame:
		return m.fill(data)
	case discardFrame:
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

// recvFrame is a client's message as a gRPC frame: the header (flags 0, the
// message arrived decompressed) and the message. Its buffer grows as
// messages need, charged to share; refused is set, and the message
// dropped, when the budget refuses the growth (an error of the codec would
// reach the client as INTERNAL).
type recvFrame struct {
	buf     []byte
	max     int // the largest message, Config.MaxMessageSize
	share   *share
	refused *rpcStatus
}

func (f *recvFrame) fill(data mem.BufferSlice) error {
	n := data.Len()
	if n > f.max {
		// The server's own limit is that of the gateway it started with;
		// a reloaded gateway's may be smaller.
		f.refused = errorf(connect.CodeResourceExhausted, fmt.Sprintf("received message larger than max (%d vs. %d)", n, f.max))
		return nil
	}
	need := headerLen + n
	if need > cap(f.buf) {
		if st := f.share.reserve(need - cap(f.buf)); st != nil {
			f.refused = st
			return nil
		}
		f.buf = make([]byte, need)
	}
	f.buf = appendFrameHeader(f.buf[:0], 0, n)[:need]
	data.CopyTo(f.buf[headerLen:])
	return nil
}

// discardFrame receives a message that is not wanted: the one after the
// only message of a client that does not stream.
type discardFrame struct{}

// sendFrame is a backend's message for the client.
type sendFrame struct{ data mem.BufferSlice }

// backendFrames reads the messages of a backend's response body. A
// compressed message is decompressed (encoding is the response's
// grpc-encoding): grpc-go compresses what it sends itself.
type backendFrames struct {
	r        io.Reader
	max      int
	encoding string
	hdr      [headerLen]byte
}

// next returns the next message; io.EOF at a clean end of the body.
func (f *backendFrames) next() (*sendFrame, error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errorf(connect.CodeInternal, "backend response ends inside a message")
		}
		return nil, err
	}
	size := binary.BigEndian.Uint32(f.hdr[1:])
	if int64(size) > int64(f.max) {
		return nil, tooLarge(size, f.max)
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(int(size))
	if _, err := io.ReadFull(f.r, *buf); err != nil {
		pool.Put(buf)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, errorf(connect.CodeInternal, "backend response ends inside a message")
		}
		return nil, err
	}
	if f.hdr[0]&flagCompressed != 0 {
		plain, st := decompress(f.encoding, *buf, f.max)
		pool.Put(buf)
		if st != nil {
			return nil, st
		}
		return &sendFrame{data: mem.BufferSlice{mem.SliceBuffer(plain)}}, nil
	}
	return &sendFrame{data: mem.BufferSlice{mem.NewBuffer(buf, pool)}}, nil
}

// streamBody is the backend request body of a client-streaming call: the
// client's messages as gRPC frames. One goroutine, started by the first
// Read, receives them from the grpc-go stream and hands each over through
// a pipe, so that Close ends a Read at once while the receiver may wait
// for a client that waits for the answer (the backend transport closes
// the body when it gives up on the call); the receiver ends with the
// client's stream, at the latest when the call ends.
type streamBody struct {
	ss    grpc.ServerStream
	share *share
	max   int // the largest message
	pr    *io.PipeReader
	pw    *io.PipeWriter
	once  sync.Once
	mu    sync.Mutex
	st    *rpcStatus // why the client's stream failed
}

func newStreamBody(ss grpc.ServerStream, s *share, max int) *streamBody {
	pr, pw := io.Pipe()
	return &streamBody{ss: ss, share: s, max: max, pr: pr, pw: pw}
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.once.Do(func() { go b.receive() })
	return b.pr.Read(p)
}

// Close ends the body: a Read under way returns, and the receiver stops at
// its next message.
func (b *streamBody) Close() error {
	return b.pr.CloseWithError(errBodyDone)
}

var errBodyDone = errors.New("request body closed")

func (b *streamBody) receive() {
	f := recvFrame{max: b.max, share: b.share}
	for {
		err := b.ss.RecvMsg(&f)
		if errors.Is(err, io.EOF) {
			_ = b.pw.Close()
			return
		}
		if err != nil || f.refused != nil {
			st := f.refused
			if st == nil {
				st = statusOf(err)
			}
			b.mu.Lock()
			b.st = st
			b.mu.Unlock()
			_ = b.pw.CloseWithError(st)
			return
		}
		// Write returns once the whole frame was read: f's buffer is free
		// again after it.
		if _, err := b.pw.Write(f.buf); err != nil {
			return
		}
	}
}

// status is the failure of the client's stream, nil when none.
func (b *streamBody) status() *rpcStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}
