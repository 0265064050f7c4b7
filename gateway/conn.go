package gateway

import (
	"context"
	"net"
	"sync"
)

// maxPendingWrite bounds the bytes a coalescingConn holds before writers wait.
const maxPendingWrite = 1 << 20

// coalescingConn batches the writes of the HTTP/2 transport to the backend.
// The transport flushes after every frame group it sends (a request's
// headers, then each data frame), each time holding the connection's write
// lock, so under load one connection carries a stream of small write system
// calls. Here Write only appends to a buffer, and one goroutine per
// connection sends whatever has accumulated with a single system call: while
// one batch is on its way, the next fills up. With one call at a time it
// costs a goroutine wake-up per write and sends the same bytes.
type coalescingConn struct {
	net.Conn

	mu      sync.Mutex
	drained sync.Cond // signalled after each batch
	pending []byte
	spare   []byte
	err     error // sticky: the first write error, or net.ErrClosed
	kick    chan struct{}
	once    sync.Once
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c, kick: make(chan struct{}, 1)}
	cc.drained.L = &cc.mu
	go cc.writeLoop()
	return cc
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && len(c.pending) > maxPendingWrite {
		c.drained.Wait()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.pending = append(c.pending, p...)
	// Under the lock, so that Close cannot close kick in between.
	select {
	case c.kick <- struct{}{}:
	default:
	}
	c.mu.Unlock()
	return len(p), nil
}

func (c *coalescingConn) writeLoop() {
	for range c.kick {
		c.mu.Lock()
		batch := c.pending
		if len(batch) == 0 {
			c.mu.Unlock()
			continue
		}
		c.pending, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		_, err := c.Conn.Write(batch)
		c.mu.Lock()
		if cap(batch) <= 2*maxPendingWrite {
			c.spare = batch[:0]
		}
		if err != nil && c.err == nil {
			c.err = err
		}
		c.drained.Broadcast()
		c.mu.Unlock()
		if err != nil {
			_ = c.Conn.Close()
		}
	}
}

// Close closes the connection; bytes not yet sent are dropped, as a closed
// TCP connection drops them.
func (c *coalescingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.mu.Lock()
		if c.err == nil {
			c.err = net.ErrClosed
		}
		c.drained.Broadcast()
		close(c.kick)
		c.mu.Unlock()
	})
	return err
}

// coalescingDialer dials the backend and wraps the connection.
func coalescingDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newCoalescingConn(c), nil
	}
}
