package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/config"
)

// flagAccessLog is the flag (and config key) of the access log.
const flagAccessLog = "access-log"

// accessLogValue is the pflag.Value of --access-log: off, json or text.
type accessLogValue string

func (v *accessLogValue) Set(s string) error {
	if err := config.CheckAccessLog(s); err != nil {
		return err
	}
	*v = accessLogValue(s)
	return nil
}

func (v *accessLogValue) String() string { return string(*v) }
func (v *accessLogValue) Type() string   { return "format" }

func registerAccessLog(fs *pflag.FlagSet, v *accessLogValue) {
	*v = "off"
	fs.Var(v, flagAccessLog, "one line per call on standard output: off, json or text")
}

// accessLogger is the access log of format on w; nil when off.
func accessLogger(format accessLogValue, w io.Writer) (*slog.Logger, error) {
	if w == nil {
		w = os.Stdout
	}
	switch format {
	case "", "off":
		return nil, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	}
	return nil, cliflags.Usagef("--%s %q: give off, json or text", flagAccessLog, string(format))
}
