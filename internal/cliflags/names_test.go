package cliflags

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/interceptor"
)

// TestOptionNames: every option a ConfigError can name has one row, whose
// flag is registered.
func TestOptionNames(t *testing.T) {
	t.Parallel()
	_, fs, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range OptionNames {
		if seen[n.Option] {
			t.Errorf("option %s twice in the table", n.Option)
		}
		seen[n.Option] = true
		if fs.Lookup(n.Flag) == nil {
			t.Errorf("option %s: no flag --%s", n.Option, n.Flag)
		}
	}
	for _, o := range []string{interceptor.OptionAllowedOrigins, interceptor.OptionAllowedHeaders,
		interceptor.OptionExposedHeaders, interceptor.OptionCredentials, interceptor.OptionMaxAge} {
		if !seen[o] {
			t.Errorf("option %s is not in the table", o)
		}
	}
	if got := FlagName("WithOriginFunc"); got != "WithOriginFunc" {
		t.Errorf("FlagName of an option no flag sets = %q, want its Go name", got)
	}
}

// TestPolicyErrorsInFlagTerms: refusals of interceptor.New come back in
// flag terms, one per rule, whatever the flags.
func TestPolicyErrorsInFlagTerms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "star with credentials", args: []string{"--allow-origin", "*", "--allow-credentials"},
			want: `--allow-origin "*": origin "*" together with credentials: browsers refuse a wildcard when credentials are allowed; list the origins instead, or drop --allow-credentials`,
		},
		{
			name: "exposed star with credentials", args: []string{"--allow-origin", appOrigin, "--expose-header", "*", "--allow-credentials"},
			want: `--expose-header "*": exposed header "*" together with credentials: browsers read it as a header named "*"; list the header names instead, or drop --allow-credentials`,
		},
		{
			name: "star among origins", args: []string{"--allow-origin", appOrigin + ",*"},
			want: `--allow-origin "*": origin "*" allows every origin, so the other origins (["https://app.example.com" "*"]) have no effect; remove either the "*" or the others`,
		},
		{
			name: "max-age above a day", args: []string{"--allow-origin", appOrigin, "--max-age", "25h"},
			want: `--max-age "25h0m0s": max-age "25h0m0s" is too long: 90000 seconds is more than 86400 (24h0m0s), the most any browser honours (Chromium stops at 2h0m0s); use at most 24h0m0s`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := parse(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Policy(discard())
			if !IsUsage(err) {
				t.Fatalf("Policy: %v, want a UsageError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("Policy error\n got %s\nwant %s", err, tt.want)
			}
			var ce *interceptor.ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("the UsageError does not wrap the *interceptor.ConfigError")
			}
		})
	}
}

// TestKeyTerms: a combination is about the key that turned the other
// option on; a value refused alone is about its own key.
func TestKeyTerms(t *testing.T) {
	t.Parallel()
	_, err := interceptor.New(interceptor.WithAllowedOrigins("*"), interceptor.WithCredentials(true))
	var ce *interceptor.ConfigError
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	key, kerr := KeyTerms(ce)
	if want := `true together with "*" in allow-origin: browsers refuse a wildcard when credentials are allowed; list the origins instead, or drop allow-credentials`; key != "allow-credentials" || kerr.Error() != want {
		t.Errorf("KeyTerms = %q, %q; want allow-credentials, %q", key, kerr, want)
	}
	if !errors.As(kerr, new(*interceptor.ConfigError)) {
		t.Errorf("KeyTerms's error does not wrap the *interceptor.ConfigError")
	}
	_, err = interceptor.New(interceptor.WithAllowedHeaders("x y"))
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	key, kerr = KeyTerms(ce)
	if want := `allowed header "x y" is not a valid header name (character " "); use letters, digits and '-' only, one name per entry`; key != "allow-header" || kerr.Error() != want {
		t.Errorf("KeyTerms = %q, %q; want allow-header, %q", key, kerr, want)
	}
}

// TestCheckMaxAge: the flag's and the key's rules, in one place.
func TestCheckMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string // "" when accepted
	}{
		{d: 0},
		{d: time.Hour},
		{d: 24 * time.Hour},
		{d: 1500 * time.Millisecond, want: `max-age "1.5s" is not whole seconds: Access-Control-Max-Age counts seconds`},
		{d: -time.Second, want: `max-age "-1s" is negative; use 0 to omit the header or a duration up to 24h0m0s`},
		{d: 25 * time.Hour, want: `max-age "25h0m0s" is too long`},
	}
	for _, tt := range tests {
		err := CheckMaxAge(tt.d)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckMaxAge(%v) = %v, want nil", tt.d, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("CheckMaxAge(%v) = %v, want %q...", tt.d, err, tt.want)
		}
	}
}
