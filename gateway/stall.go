package gateway

import (
	"net/http"
	"time"

	"connectrpc.com/connect"
)

// stallWriter is the client's [http.ResponseWriter] with a progress
// deadline: before a write or flush it makes sure the connection (HTTP/1.1)
// or the stream (HTTP/2) has a write deadline at least stall away, so that
// a client that stops reading fails the write that blocks, and the call
// ends, releasing its backend stream. A client that keeps reading never
// meets the deadline, however long its stream lasts.
//
// Setting a deadline costs a message to the HTTP/2 server's goroutine, so
// it is renewed at most every stall/8: each write gets between stall and
// 9/8 stall. The deadline needs no clearing: an HTTP/2 stream's ends with
// the stream, and net/http clears an HTTP/1.1 connection's after the
// response's last flush (which the deadline still bounds). It lives inside
// [call] and is used by one goroutine.
type stallWriter struct {
	http.ResponseWriter
	stall time.Duration
	rc    *http.ResponseController
	armed time.Time // when the deadline was last set; zero: never
	off   bool      // the writer does not support deadlines
}

// arm renews the write deadline when it is closer than stall.
func (s *stallWriter) arm() {
	if s.off {
		return
	}
	now := time.Now()
	if !s.armed.IsZero() && now.Sub(s.armed) < s.stall/8 {
		return
	}
	if s.rc == nil {
		s.rc = http.NewResponseController(s.ResponseWriter)
	}
	if err := s.rc.SetWriteDeadline(now.Add(s.stall + s.stall/8)); err != nil {
		s.off = true // http.ErrNotSupported: a writer without deadlines
		return
	}
	s.armed = now
}

func (s *stallWriter) Write(p []byte) (int, error) {
	s.arm()
	return s.ResponseWriter.Write(p)
}

// Flush sends what was written, under the deadline.
func (s *stallWriter) Flush() {
	s.arm()
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the writer underneath.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// clientWriteFailed is the status of a call whose client did not take a
// write: it went away, or stopped reading for longer than the stall timeout.
func clientWriteFailed(err error) *rpcStatus {
	return errorf(connect.CodeCanceled, "writing to the client: "+err.Error())
}
