package cliflags

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/corsgate/corsgate/interceptor"
)

// Overrides are one route's own CORS settings (the per-route keys of the
// config file): a nil field keeps the default's value, a non-nil one
// replaces it (an empty list included: no origin, no extra header).
type Overrides struct {
	AllowOrigins, AllowHeaders, ExposeHeaders []string
	AllowCredentials, PrivateNetwork, Strict  *bool
	TraceHeaders                              *bool
	MaxAge                                    *time.Duration
}

// With returns c with the settings o gives in place of c's.
func (c CORS) With(o Overrides) CORS {
	if o.AllowOrigins != nil {
		c.AllowOrigins = o.AllowOrigins
	}
	if o.AllowHeaders != nil {
		c.AllowHeaders = o.AllowHeaders
	}
	if o.ExposeHeaders != nil {
		c.ExposeHeaders = o.ExposeHeaders
	}
	if o.AllowCredentials != nil {
		c.AllowCredentials = *o.AllowCredentials
	}
	if o.PrivateNetwork != nil {
		c.PrivateNetwork = *o.PrivateNetwork
	}
	if o.TraceHeaders != nil {
		c.TraceHeaders = *o.TraceHeaders
	}
	if o.Strict != nil {
		c.Strict = *o.Strict
	}
	if o.MaxAge != nil {
		c.MaxAge = *o.MaxAge
	}
	return c
}

// RoutePolicy builds the policy of a route named prefix ("routes[1]"): c
// with o in place, extra options (the logger, the observer) applied last.
// A refused value is a [UsageError] naming the route's key, in config-key
// terms ([KeyTerms]): `routes[1].allow-origin: origin "null" is sent by ...`.
func (c CORS) RoutePolicy(prefix string, o Overrides, extra ...interceptor.Option) (*interceptor.Policy, error) {
	merged := c.With(o)
	p, err := interceptor.New(append(merged.Options(), extra...)...)
	if err != nil {
		return nil, &UsageError{Err: RouteKeyError(prefix, err)}
	}
	return p, nil
}

// RouteKeyError says a refusal of [interceptor.New] for the route named
// prefix in config-key terms, with the key under the route:
// "routes[1].allow-origin: ...". Other errors come back prefixed.
func RouteKeyError(prefix string, err error) error {
	var ce *interceptor.ConfigError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	key, kerr := KeyTerms(ce)
	return &renamedError{msg: prefix + "." + key + ": " + strings.TrimSpace(kerr.Error()), err: ce}
}
