package cliflags

import (
	"fmt"
	"log/slog"
)

// SetLevel sets v to level, one of "debug", "info", "warn" or "error" (any
// case), as [NewLogger] reads it. A logger whose handler takes v as its
// level follows later calls: that is how `corsgate serve` changes its log
// level on a reload. Another level is a [UsageError] naming --log-level,
// and leaves v unchanged.
func SetLevel(v *slog.LevelVar, level string) error {
	l, err := parseLevel(level)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--%s: %w", FlagLogLevel, err)}
	}
	v.Set(l)
	return nil
}
