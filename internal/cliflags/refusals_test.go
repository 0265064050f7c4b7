package cliflags

import (
	"strings"
	"testing"
)

// TestFlagErrorsNameTheFlag gives each shared flag invalid values.
// Each must be refused before anything starts, either while the flags are
// parsed or when the policy is built, as a UsageError whose one-line message
// names the flag.
func TestFlagErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		flag  string
		value string
		// atPolicy: accepted by the parser, refused by Policy (the
		// interceptor).
		atPolicy bool
		// bug4: the refusal does not name the flag yet (BUG-4).
		bug4 bool
	}{
		{flag: FlagMaxAge, value: "soon"},
		{flag: FlagMaxAge, value: "-1s"},
		{flag: FlagMaxAge, value: "-5"},
		{flag: FlagMaxAge, value: "1.5s"},
		{flag: FlagMaxAge, value: "99999999999999999999"},
		{flag: FlagMaxAge, value: "25h", atPolicy: true},
		{flag: FlagMaxAge, value: ""},
		{flag: FlagLogLevel, value: "loud"},
		{flag: FlagLogLevel, value: ""},
		{flag: FlagAllowCredentials, value: "maybe"},
		{flag: FlagPrivateNetwork, value: "2"},
		{flag: FlagStrict, value: "yes please"},
		{flag: FlagAllowOrigin, value: "null", atPolicy: true, bug4: true},
		{flag: FlagAllowOrigin, value: "https://app.example.com/", atPolicy: true, bug4: true},
		{flag: FlagAllowOrigin, value: "https://*.com", atPolicy: true, bug4: true},
		{flag: FlagAllowOrigin, value: "app.example.com", atPolicy: true, bug4: true},
		{flag: FlagAllowOrigin, value: "https://u@app.example.com", atPolicy: true, bug4: true},
		{flag: FlagAllowHeader, value: "x tenant", atPolicy: true, bug4: true},
		{flag: FlagAllowHeader, value: "Access-Control-Allow-Origin", atPolicy: true, bug4: true},
		{flag: FlagExposeHeader, value: "x:y", atPolicy: true, bug4: true},
	}
	for _, tt := range tests {
		t.Run(tt.flag+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			c, _, err := parse(t, "--"+tt.flag+"="+tt.value)
			if err == nil {
				if !tt.atPolicy {
					t.Errorf("--%s=%q accepted by the parser", tt.flag, tt.value)
				}
				_, err = c.Policy(discard())
				if err == nil {
					t.Fatalf("--%s=%q accepted", tt.flag, tt.value)
				}
				if !IsUsage(err) {
					t.Errorf("error %v is not a UsageError", err)
				}
			} else if tt.atPolicy {
				t.Logf("refused by the parser already: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
			if !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("error %q does not name --%s", err, tt.flag)
			}
		})
	}
}

// TestWildcardWithCredentials checks every way the command line
// (and the config values applied to it) can combine the "*" origin with
// credentials: all refused before serving, naming the flags.
func TestWildcardWithCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		config map[string]any // applied with ApplyUnchanged after parsing
	}{
		{name: "flags", args: []string{"--allow-origin", "*", "--allow-credentials"}},
		{name: "flags reversed", args: []string{"--allow-credentials", "--allow-origin=*"}},
		{name: "comma list", args: []string{"--allow-origin", "https://a.example.com,*", "--allow-credentials"}},
		{name: "credentials=true", args: []string{"--allow-origin", "*", "--allow-credentials=true"}},
		{name: "credentials=1", args: []string{"--allow-origin", "*", "--allow-credentials=1"}},
		{name: "config origin, flag credentials", args: []string{"--allow-credentials"}, config: map[string]any{FlagAllowOrigin: []any{"*"}}},
		{name: "flag origin, config credentials", args: []string{"--allow-origin", "*"}, config: map[string]any{FlagAllowCredentials: true}},
		{name: "config both", config: map[string]any{FlagAllowOrigin: []any{"*"}, FlagAllowCredentials: true}},
		{name: "config credentials string", config: map[string]any{FlagAllowOrigin: "*", FlagAllowCredentials: "true"}},
		{name: "expose star", args: []string{"--allow-origin", "https://a.example.com", "--expose-header", "*", "--allow-credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, fs, err := parse(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if tt.config != nil {
				if err := ApplyUnchanged(fs, tt.config); err != nil {
					t.Fatal(err)
				}
			}
			if !c.AllowCredentials {
				t.Fatal("credentials not set: the case does not test what it says")
			}
			p, err := c.Policy(discard())
			if err == nil || p != nil {
				t.Fatalf("Policy accepted a wildcard with credentials: %v", p)
			}
			if !IsUsage(err) {
				t.Errorf("error %v is not a UsageError", err)
			}
			t.Run("names the flags", func(t *testing.T) {
				if !strings.Contains(err.Error(), FlagAllowCredentials) {
					t.Errorf("error %q does not name --%s", err, FlagAllowCredentials)
				}
			})
		})
	}
}
