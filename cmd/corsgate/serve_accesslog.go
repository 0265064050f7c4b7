package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/spf13/pflag"

	"github.com/corsgate/corsgate/internal/config"
)

// flagAccessLog is the flag (and config key) of the access log.
const flagAccessLog = "access-log"

// accessLogFlags is corsgate serve's --access-log: the format, and where
// the lines go.
type accessLogFlags struct {
	format accessLogFormat
	// out gets the lines: the command's standard output; nil means
	// os.Stdout.
	out io.Writer
}

// accessLogFormat is the pflag.Value of --access-log: off, json or text,
// checked as the config key is.
type accessLogFormat string

func (v *accessLogFormat) Set(s string) error {
	if err := config.CheckAccessLog(s); err != nil {
		return err
	}
	*v = accessLogFormat(s)
	return nil
}

func (v *accessLogFormat) String() string { return string(*v) }
func (v *accessLogFormat) Type() string   { return "format" }

func (a *accessLogFlags) register(fs *pflag.FlagSet) {
	a.format = "off"
	fs.Var(&a.format, flagAccessLog, "one line per call on standard output: off, json or text")
}

// logger is the access log for gateway.Config.AccessLog; nil when off.
func (a *accessLogFlags) logger() *slog.Logger {
	w := a.out
	if w == nil {
		w = os.Stdout
	}
	switch a.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil))
	case "text":
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return nil
}

// mountDebugPolicy serves the policy dump of s's gateway at GET
// /debug/policy of the metrics listener: the table in force at each request.
func (s *serveServer) mountDebugPolicy(mux *http.ServeMux) {
	mux.Handle("GET /debug/policy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gateway().PolicyHandler().ServeHTTP(w, r)
	}))
}
