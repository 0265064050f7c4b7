package cliflags

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// parse registers the CORS flags on a fresh flag set and parses args.
func parse(t *testing.T, args ...string) (*CORS, *pflag.FlagSet, error) {
	t.Helper()
	var c CORS
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	c.Register(fs)
	return &c, fs, fs.Parse(args)
}

func TestRegisterParse(t *testing.T) {
	t.Parallel()
	defaults := CORS{MaxAge: 2 * time.Hour, LogLevel: "info"}
	tests := []struct {
		name    string
		args    []string
		want    CORS
		wantErr string
	}{
		{name: "defaults", args: nil, want: defaults},
		{
			name: "repeated and comma-separated lists",
			args: []string{
				"--allow-origin", "https://a.example.com", "--allow-origin=https://*.b.example.com,http://localhost:5173",
				"--allow-header", "x-tenant", "--expose-header", "x-a,x-b",
			},
			want: CORS{
				AllowOrigins:  []string{"https://a.example.com", "https://*.b.example.com", "http://localhost:5173"},
				AllowHeaders:  []string{"x-tenant"},
				ExposeHeaders: []string{"x-a", "x-b"},
				MaxAge:        2 * time.Hour,
				LogLevel:      "info",
			},
		},
		{
			name: "booleans",
			args: []string{"--allow-credentials", "--private-network", "--strict"},
			want: CORS{AllowCredentials: true, PrivateNetwork: true, Strict: true, MaxAge: 2 * time.Hour, LogLevel: "info"},
		},
		{name: "max-age duration", args: []string{"--max-age", "90m"}, want: CORS{MaxAge: 90 * time.Minute, LogLevel: "info"}},
		{name: "max-age seconds", args: []string{"--max-age=600"}, want: CORS{MaxAge: 10 * time.Minute, LogLevel: "info"}},
		{name: "max-age zero", args: []string{"--max-age=0"}, want: CORS{MaxAge: 0, LogLevel: "info"}},
		{name: "max-age negative", args: []string{"--max-age=-1s"}, wantErr: "negative"},
		{name: "max-age fraction", args: []string{"--max-age=1.5s"}, wantErr: "whole seconds"},
		{name: "max-age garbage", args: []string{"--max-age=soon"}, wantErr: `"soon" is neither a duration`},
		{name: "log level any case", args: []string{"--log-level", "DEBUG"}, want: CORS{MaxAge: 2 * time.Hour, LogLevel: "debug"}},
		{name: "log level unknown", args: []string{"--log-level", "verbose"}, wantErr: `unknown log level "verbose"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := parse(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			if !equalCORS(*got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.args, *got, tt.want)
			}
		})
	}
}

func equalCORS(a, b CORS) bool {
	return slices.Equal(a.AllowOrigins, b.AllowOrigins) && slices.Equal(a.AllowHeaders, b.AllowHeaders) &&
		slices.Equal(a.ExposeHeaders, b.ExposeHeaders) && a.AllowCredentials == b.AllowCredentials &&
		a.MaxAge == b.MaxAge && a.PrivateNetwork == b.PrivateNetwork && a.Strict == b.Strict && a.LogLevel == b.LogLevel
}

func TestMaxAgeDefaultShown(t *testing.T) {
	t.Parallel()
	_, fs, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup(FlagMaxAge).DefValue; got != "2h" {
		t.Errorf("--max-age default shown as %q, want %q", got, "2h")
	}
}

func TestParseMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "7200", want: 2 * time.Hour},
		{in: " 60 ", want: time.Minute},
		{in: "2h", want: 2 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "0s", want: 0},
		{in: "0", want: 0},
		{in: "-5", wantErr: true},
		{in: "500ms", wantErr: true},
		{in: "", wantErr: true},
		{in: "2 h", wantErr: true},
		{in: "99999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMaxAge(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMaxAge(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseMaxAge(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{in: 2 * time.Hour, want: "2h"},
		{in: 90 * time.Minute, want: "1h30m"},
		{in: 90 * time.Second, want: "1m30s"},
		{in: 10 * time.Minute, want: "10m"},
		{in: 0, want: "0s"},
		{in: time.Hour + time.Second, want: "1h0m1s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.in); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level     string
		wantDebug bool
		wantInfo  bool
		wantWarn  bool
	}{
		{level: "debug", wantDebug: true, wantInfo: true, wantWarn: true},
		{level: "info", wantInfo: true, wantWarn: true},
		{level: "Warn", wantWarn: true},
		{level: "error"},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log, err := NewLogger(tt.level, &buf)
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d-line")
			log.Info("i-line")
			log.Warn("w-line")
			out := buf.String()
			for _, c := range []struct {
				msg  string
				want bool
			}{{msg: "d-line", want: tt.wantDebug}, {msg: "i-line", want: tt.wantInfo}, {msg: "w-line", want: tt.wantWarn}} {
				if got := strings.Contains(out, c.msg); got != c.want {
					t.Errorf("level %s: output has %s = %v, want %v\n%s", tt.level, c.msg, got, c.want, out)
				}
			}
		})
	}
}

func TestNewLoggerUnknownLevel(t *testing.T) {
	t.Parallel()
	_, err := NewLogger("loud", &bytes.Buffer{})
	if !IsUsage(err) {
		t.Fatalf("NewLogger(loud) error = %v, want a UsageError", err)
	}
	if !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("error %q does not quote the level", err)
	}
}

func TestUsageError(t *testing.T) {
	t.Parallel()
	base := errors.New("base")
	err := fmt.Errorf("context: %w", Usagef("bad value %q: %w", "x", base))
	if !IsUsage(err) {
		t.Error("IsUsage(wrapped UsageError) = false")
	}
	if !errors.Is(err, base) {
		t.Error("UsageError does not unwrap to the error inside")
	}
	if got, want := err.Error(), `context: bad value "x": base`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if IsUsage(base) || IsUsage(nil) {
		t.Error("IsUsage is true for a plain error or nil")
	}
}

// discard is a logger for tests that do not read logs.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
