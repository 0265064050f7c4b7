package gateway

import (
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// HTTP/1.1 client streams are full duplex (see [call.run]): the response may
// start while the request body still streams in. When the backend call ends
// before that body did (the backend died, answered early, or the call was
// refused), the transport closes the body; net/http's Close of an HTTP/1.1
// request body reads on to its end (up to 256 KiB) to keep the connection,
// so a client trickling its body would wait for its answer as long as it
// keeps trickling. Instead the gateway cuts the body (a read deadline in the
// past ends the read under way and the drain) and closes the connection once
// answered: what the client still sends can't be told from a next request.

// clientBody is the body of a streaming backend request. Closing it closes
// the client's request body, cut first on HTTP/1.1 unless it was read to
// its end: when the backend ends the call while the client still has its
// request stream open (a bidi error, a dead backend), the transport closes
// the request body, and the read it is blocked in must end at once, or the
// call's answer would wait for the client's next bytes.
type clientBody struct {
	io.Reader
	c *call
}

func (b clientBody) Close() error {
	b.c.cutBody()
	return b.c.r.Body.Close()
}

// cutBody ends the reading of an HTTP/1.1 client's body that did not reach
// its end. It may run on any goroutine; the connection is closed after the
// answer by [call.closeCutConn], on the handler's.
func (c *call) cutBody() {
	if c.r.ProtoMajor != 1 || c.watched.sawEOF() {
		return
	}
	c.cutMu.Lock()
	defer c.cutMu.Unlock()
	if c.ended {
		// The handler has returned: net/http owns the body and the
		// connection now, and may already serve the next request on it.
		return
	}
	c.cut.Store(true)
	_ = http.NewResponseController(c.w).SetReadDeadline(time.Unix(1, 0))
}

// closeCutConn makes net/http close an HTTP/1.1 client stream's connection
// after the answer when its body was not read to its end: the rest of it
// would be read as the next request. It runs on the handler's goroutine,
// before the answer when there is still one to write (so that it says
// Connection: close). net/http closes such a connection gently (it sends
// FIN, waits a little, then closes), so that the client reads the answer
// instead of a reset; its one way to ask for that is a request body over
// its [http.MaxBytesReader] limit, so that is what is read here.
func (c *call) closeCutConn() {
	if c.r.ProtoMajor != 1 || c.route == nil || c.route.streamType&connect.StreamTypeClient == 0 {
		return
	}
	if !c.cut.Load() && c.watched.sawEOF() {
		return
	}
	_ = http.NewResponseController(c.w).SetReadDeadline(time.Unix(1, 0))
	w := c.w
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, io.NopCloser(strings.NewReader("x")), 0))
	c.w.Header()["Connection"] = connectionClose
}
