package e2e

import (
	"net/http"
	"testing"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// startGateway: TEMPORARY until the gateway package lands.
func startGateway(t *testing.T, _ *greetsvc.Greeter, _ *interceptor.Policy) http.Handler {
	t.Skip("gateway not ready yet")
	return nil
}
