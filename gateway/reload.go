package gateway

import (
	"bytes"
	"crypto/tls"
	"slices"
	"sync"
	"time"
)

// Clients holds backend clients that several gateways share: a gateway
// built with [Config.Clients] takes the client of each backend from it, and
// a later gateway built with the same Clients (after a config reload, say)
// reuses the client, with its open connections, of every backend whose
// name, addresses, resolve interval and TLS settings are unchanged. TLS
// settings compare by ServerName, MinVersion, InsecureSkipVerify, RootCAs
// and the certificate chains of Certificates; other fields are not
// compared.
//
// Each gateway holds its clients until [Gateway.Close]; a client that no
// gateway holds any more is closed then, its connections with it. Close a
// gateway only after its calls ended (corsgate serve waits for them), or
// its calls on a backend no other gateway uses are cut.
//
// The zero value is not usable; create it with [NewClients]. It is safe
// for concurrent use.
type Clients struct {
	mu      sync.Mutex
	entries []*sharedClient
}

// sharedClient is one client of a [Clients] and the gateways holding it.
type sharedClient struct {
	name      string
	addresses []string
	interval  time.Duration
	tls       *tls.Config
	client    backendClient
	refs      int
}

// NewClients returns an empty set of shared backend clients.
func NewClients() *Clients { return &Clients{} }

// Len reports how many clients the set holds: the backends some gateway
// still uses.
func (c *Clients) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// acquire returns the client of b, taken from the set when one matches, or
// made with dial and added to it.
func (c *Clients) acquire(b Backend, tlsConf *tls.Config, dial func() (backendClient, error)) (backendClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.name == b.Name && slices.Equal(e.addresses, b.Addresses) && e.interval == b.ResolveInterval && sameTLS(e.tls, tlsConf) {
			e.refs++
			return e.client, nil
		}
	}
	client, err := dial()
	if err != nil {
		return nil, err
	}
	c.entries = append(c.entries, &sharedClient{
		name: b.Name, addresses: slices.Clone(b.Addresses), interval: b.ResolveInterval, tls: tlsConf, client: client, refs: 1,
	})
	return client, nil
}

// release drops one gateway's hold on client, closing it when no gateway
// holds it any more. A client still held keeps its connections, idle ones
// included: they are the next gateway's.
func (c *Clients) release(client backendClient) {
	c.mu.Lock()
	for i, e := range c.entries {
		if e.client != client {
			continue
		}
		e.refs--
		if e.refs > 0 {
			c.mu.Unlock()
			return
		}
		c.entries = slices.Delete(c.entries, i, i+1)
		c.mu.Unlock()
		_ = client.Close()
		return
	}
	c.mu.Unlock()
}

// sameTLS reports whether two backend TLS configurations dial alike, as
// far as the gateway's own settings go.
func sameTLS(a, b *tls.Config) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.ServerName != b.ServerName || a.MinVersion != b.MinVersion || a.InsecureSkipVerify != b.InsecureSkipVerify {
		return false
	}
	if (a.RootCAs == nil) != (b.RootCAs == nil) || a.RootCAs != nil && !a.RootCAs.Equal(b.RootCAs) {
		return false
	}
	if len(a.Certificates) != len(b.Certificates) {
		return false
	}
	for i := range a.Certificates {
		// Equal chains mean equal keys: a pair's key matches its leaf.
		if !slices.EqualFunc(a.Certificates[i].Certificate, b.Certificates[i].Certificate, bytes.Equal) {
			return false
		}
	}
	return true
}
