package testutil

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPGet fetches url within 5 s and returns its body (at most 8 MiB),
// an error for any status but 200 OK. The bench and the soak read their
// children's metrics and health pages with it.
func HTTPGet(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", url, res.Status)
	}
	return body, nil
}
