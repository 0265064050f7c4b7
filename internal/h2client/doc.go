// Package h2client is the HTTP/2 client the gateway calls its gRPC backend
// with: a [Transport] ([http.RoundTripper]) speaking only what gRPC needs of
// HTTP/2 (POST with a body, response headers, data and trailers), over h2c
// or TLS with ALPN h2, to one backend. Create it with [New] from a [Config];
// stop it with [Transport.Close].
//
// # Why its own client
//
// Speed. net/http's HTTP/2 client flushes a request's HEADERS frame and its
// DATA frames in separate writes, so a unary call cost the gateway at least
// two write system calls to the backend, the largest single cost in its
// profile. With this client, gateway CPU per 10 000 gRPC-Web calls went from
// 1.01 s to 0.77 s at 16 concurrent calls (BENCHMARKS.md has the runs).
//
// # What it does
//
//   - Coalesced writes: every writer appends its frames to the connection's
//     buffer and the last writer queued at that moment flushes them all. A
//     unary call's HEADERS, DATA and END_STREAM leave in one write, and under
//     load several calls share one.
//   - One wake-up per unary call: [Transport.Call] with whole hands the
//     response over once it ended (or once a quarter of the stream window is
//     buffered), not at the headers, the message and the trailers in turn.
//   - Flow control: the backend may send a stream at most
//     [Config.StreamWindow] bytes ahead of what the caller read, so memory per
//     stuck caller is bounded; the connection window is large and returned as
//     streams are read or dropped, so stuck callers pin only their own
//     streams.
//   - SETTINGS awaited: a new connection takes calls once the backend's
//     SETTINGS arrived, so its stream limit is known before the first call;
//     past the limit another connection is opened. A backend that allows no
//     stream fails the call at once.
//   - Retries: a call the backend refused before processing it
//     (REFUSED_STREAM, a stream above a GOAWAY's last stream id, a connection
//     that broke before any of the call's frames went out) is retried on
//     another connection when its body can be replayed ([http.Request.GetBody]).
//     Past that, [Unprocessed] tells a caller with several backends (the
//     balancer) that a failed call may go to another one, and [DialFailed]
//     that the backend takes no connection.
//   - Pings: a connection carrying calls that goes silent for
//     [Config.PingAfter] is pinged, and closed when the ping goes unanswered
//     for [Config.PingTimeout], failing its calls. Idle connections are not
//     pinged: gRPC servers take that as abuse.
//
// [Transport.Dial] is the one way to the backend: other HTTP/2 clients of the
// same backend (net/http's, for server reflection and health checks) dial
// through it, so that TCP, TLS and ALPN are set up the same way for all.
//
// Response bodies have a Buffered() int method: how many bytes Read returns
// without waiting; and a Wait() method that blocks until Read would not.
//
// Files: transport.go the transport, its config and its pool; conn.go a
// connection's write side and life; read.go its read loop; stream.go one
// call.
package h2client
