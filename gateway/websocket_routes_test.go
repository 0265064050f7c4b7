package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/internal/testutil"
)

// TestWebSocketRoutePolicies checks that an upgrade is judged by the policy
// of its procedure's route, as CORS is: an origin that one route allows is
// refused on the other, before upgrading.
func TestWebSocketRoutePolicies(t *testing.T) {
	t.Parallel()
	cfg := routedConfig(t, startBackend(t, nil), testutil.StartTestService(t))
	cfg.WebSockets = &gateway.WebSocketConfig{}
	g, url := startRouted(t, cfg)
	waitReady(t, g)
	rows := []struct {
		name, path, origin string
		want               int
	}{
		{name: "greet route, its origin", path: "/greet.v1.GreetService/Chat", origin: testOrigin, want: http.StatusSwitchingProtocols},
		{name: "greet route, the admin origin", path: "/greet.v1.GreetService/Chat", origin: adminOrigin, want: http.StatusForbidden},
		{name: "testing route, its origin", path: "/grpc.testing.TestService/FullDuplexCall", origin: adminOrigin, want: http.StatusSwitchingProtocols},
		{name: "testing route, the greet origin", path: "/grpc.testing.TestService/FullDuplexCall", origin: testOrigin, want: http.StatusForbidden},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := dialWS(t, ctx, url, row.path, row.origin, nil)
			if c != nil {
				_ = c.finish()
			}
			got := 0
			if resp != nil {
				got = resp.StatusCode
			}
			if got != row.want {
				t.Errorf("upgrade of %s from %s: status %d (err %v), want %d", row.path, row.origin, got, err, row.want)
			}
		})
	}
}
