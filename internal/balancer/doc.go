// Package balancer spreads a backend's calls over its replicas: a [Pool]
// made by [New] from a [Config] holds one [h2client.Transport] (its own
// HTTP/2 connections) per replica address and is, like a Transport, an
// [http.RoundTripper] with a Call method the gateway uses in a Transport's
// place, and a Dial method for the backend's other HTTP/2 clients.
//
// # Replicas
//
// [Config.Addresses] lists the replicas as "host:port", one each, or names
// one "dns:///host:port" whose every A and AAAA record is a replica. Such a
// name is resolved again every [Config.ResolveInterval] (30 s by default,
// grpc-go's dns resolver's pace) and, at most once a second, when a
// connection to a replica fails or no replica is ready: HTTP/2 connections
// live long, so a client that resolved once would pin all load on the
// replicas it first found. A replica that appears takes calls at once; one
// that disappears is drained: it takes no new call, and its Transport is
// closed once its calls ended, so no call in flight fails for it. An answer
// with no address, or an error, keeps the replicas as they are.
//
// # Which replica
//
// A call goes to the ready replica with the fewest outstanding calls (a
// call is outstanding from its start until its response body was read to
// its end or closed); ties go round robin, scanning from a position that
// advances with every call. Least outstanding rather than plain round
// robin because gRPC calls differ widely in length (a server stream may
// last minutes, a unary call a millisecond): counting what each replica is
// still working on steers calls away from a slow or overloaded replica,
// gives a restarted replica its share at once, and needs only an atomic
// counter per replica read by a scan of the replicas, lock free. The scan
// is linear in the number of replicas, which suits the tens a backend has.
//
// # Health
//
// A replica starts ready. It is ejected (no new calls) when a call or a
// health check could not open a connection to it ([h2client.DialFailed]),
// or, with [Config.HealthCheck], when its health check failed. An ejected
// replica is probed after a backoff that doubles from [Config.RetryBase] up
// to [Config.RetryMax], each wait jittered by ±20 %: a probe opens a
// connection ([h2client.Transport.Connect]), or with HealthCheck asks
// grpc.health.v1; its success makes the replica ready again. With
// HealthCheck, every [Config.HealthInterval] each replica is asked
// grpc.health.v1.Health/Check for [Config.HealthService]; a replica that
// answers anything but SERVING is not-serving and takes no new calls until
// it answers SERVING. A backend without the health service (UNIMPLEMENTED)
// counts as serving.
//
// When no replica is ready, a call fails at once with an error wrapping
// [ErrNoReplica]; the gateway maps it, as every transport error that is not
// a context error, to UNAVAILABLE. After [Pool.Close], calls fail with
// [ErrClosed].
//
// # Retries
//
// A call that failed before its replica processed it ([h2client.Unprocessed]:
// the connection could not be opened or broke before any of the call's
// frames went out, REFUSED_STREAM, a stream above a GOAWAY's last stream id)
// is sent once more, to another ready replica, when its body can be
// replayed: it has none, or [http.Request.GetBody] is set. Nothing else is
// retried: a call whose bytes reached a replica may have been processed
// there, and a replayed unary call would then run twice. (Within one
// replica, the Transport already retries a refused call on another of its
// connections.)
//
// # Metrics
//
// [Config.Observe] is told of every change of a replica's [State] (added,
// ejected, not serving, ready again, draining, removed) as a
// [ReplicaEvent]; an event whose To is [StateEjected] is an ejection.
// [Pool.Replicas] returns each replica's state and counters at any time.
//
// Files: config.go the configuration, states and events; pool.go the pool
// and its calls; replica.go one replica's health; resolve.go DNS.
package balancer
