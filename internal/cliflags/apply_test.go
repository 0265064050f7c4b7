package cliflags

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestApplyUnchanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		json    string // the config, as its JSON form
		check   func(t *testing.T, c *CORS)
		wantErr string
	}{
		{
			name: "config fills unset flags",
			json: `{"allow-origin": ["https://a.example.com", "https://b.example.com"], "allow-credentials": true,
				"max-age": 600, "private-network": true, "strict": true, "log-level": "debug", "expose-header": ["x-a"]}`,
			check: func(t *testing.T, c *CORS) {
				t.Helper()
				if !slices.Equal(c.AllowOrigins, []string{"https://a.example.com", "https://b.example.com"}) {
					t.Errorf("AllowOrigins = %q", c.AllowOrigins)
				}
				if !c.AllowCredentials || !c.PrivateNetwork || !c.Strict {
					t.Errorf("booleans not applied: %+v", c)
				}
				if c.MaxAge != 10*time.Minute {
					t.Errorf("MaxAge = %v, want 10m (600 seconds)", c.MaxAge)
				}
				if c.LogLevel != "debug" || !slices.Equal(c.ExposeHeaders, []string{"x-a"}) {
					t.Errorf("LogLevel %q, ExposeHeaders %q", c.LogLevel, c.ExposeHeaders)
				}
			},
		},
		{
			name: "command line wins, list and scalar",
			args: []string{"--allow-origin", "https://cli.example.com", "--max-age", "1m", "--strict=false"},
			json: `{"allow-origin": ["https://file.example.com"], "max-age": 600, "strict": true, "allow-header": ["x-file"]}`,
			check: func(t *testing.T, c *CORS) {
				t.Helper()
				if !slices.Equal(c.AllowOrigins, []string{"https://cli.example.com"}) {
					t.Errorf("AllowOrigins = %q, want the command line's only", c.AllowOrigins)
				}
				if c.MaxAge != time.Minute || c.Strict {
					t.Errorf("MaxAge %v Strict %v, want the command line's 1m false", c.MaxAge, c.Strict)
				}
				if !slices.Equal(c.AllowHeaders, []string{"x-file"}) {
					t.Errorf("AllowHeaders = %q, want the file's", c.AllowHeaders)
				}
			},
		},
		{
			name: "null and empty list keep defaults",
			json: `{"max-age": null, "allow-origin": []}`,
			check: func(t *testing.T, c *CORS) {
				t.Helper()
				if c.MaxAge != DefaultMaxAge || len(c.AllowOrigins) != 0 {
					t.Errorf("MaxAge %v AllowOrigins %q, want defaults", c.MaxAge, c.AllowOrigins)
				}
			},
		},
		{
			name: "one string for a list flag",
			json: `{"allow-origin": "https://one.example.com"}`,
			check: func(t *testing.T, c *CORS) {
				t.Helper()
				if !slices.Equal(c.AllowOrigins, []string{"https://one.example.com"}) {
					t.Errorf("AllowOrigins = %q", c.AllowOrigins)
				}
			},
		},
		{name: "unknown key", json: `{"alow-origin": ["x"]}`, wantErr: `config key "alow-origin" is not a flag`},
		{name: "bad value", json: `{"max-age": "soon"}`, wantErr: `config key "max-age": max-age "soon" is neither`},
		{name: "fraction for seconds", json: `{"max-age": 1.5}`, wantErr: `config key "max-age": 1.5 is not a whole number`},
		{name: "list for a scalar", json: `{"strict": [true]}`, wantErr: `config key "strict": a list is given`},
		{name: "bad level", json: `{"log-level": "loud"}`, wantErr: `config key "log-level": unknown log level "loud"`},
		{name: "object value", json: `{"strict": {"on": true}}`, wantErr: `config key "strict": unsupported value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, fs, err := parse(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			var values map[string]any
			if err := json.Unmarshal([]byte(tt.json), &values); err != nil {
				t.Fatal(err)
			}
			err = ApplyUnchanged(fs, values)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ApplyUnchanged error = %v, want one containing %q", err, tt.wantErr)
				}
				if !IsUsage(err) {
					t.Errorf("ApplyUnchanged error %v is not a UsageError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyUnchanged: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestApplyUnchangedKeepsChanged(t *testing.T) {
	t.Parallel()
	_, fs, err := parse(t, "--strict")
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyUnchanged(fs, map[string]any{"private-network": true, "allow-origin": []string{"https://a.example.com"}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		flag string
		want bool
	}{{flag: "strict", want: true}, {flag: "private-network", want: false}, {flag: "allow-origin", want: false}} {
		if got := fs.Changed(tt.flag); got != tt.want {
			t.Errorf("Changed(%q) = %v after ApplyUnchanged, want %v", tt.flag, got, tt.want)
		}
	}
}

func TestApplyUnchangedGoValues(t *testing.T) {
	t.Parallel()
	c, fs, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"max-age":       int64(30),
		"allow-header":  []string{"x-one", "x-two"},
		"expose-header": []any{"x-three"},
		"strict":        true,
	}
	if err := ApplyUnchanged(fs, values); err != nil {
		t.Fatal(err)
	}
	if c.MaxAge != 30*time.Second || !c.Strict || !slices.Equal(c.AllowHeaders, []string{"x-one", "x-two"}) ||
		!slices.Equal(c.ExposeHeaders, []string{"x-three"}) {
		t.Errorf("after ApplyUnchanged: %+v", *c)
	}
}
