package interceptor

import (
	"errors"
	"testing"
	"time"
)

// TestConfigError checks the fields of New's refusals: the option, the
// value, the reason and the fix, and the other option of a combination.
func TestConfigError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []Option
		want ConfigError // subject is not compared
		msg  string      // the whole Error()
	}{
		{
			name: "star with credentials", opts: []Option{WithAllowedOrigins("*"), WithCredentials(true)},
			want: ConfigError{Option: OptionAllowedOrigins, Value: "*", With: OptionCredentials,
				Reason: "browsers refuse a wildcard when credentials are allowed", Fix: "list the origins instead"},
			msg: `interceptor: origin "*" together with credentials: browsers refuse a wildcard when credentials are allowed; list the origins instead, or drop WithCredentials(true)`,
		},
		{
			name: "exposed star with credentials", opts: []Option{WithExposedHeaders("*"), WithCredentials(true)},
			want: ConfigError{Option: OptionExposedHeaders, Value: "*", With: OptionCredentials,
				Reason: `browsers read it as a header named "*"`, Fix: "list the header names instead"},
			msg: `interceptor: exposed header "*" together with credentials: browsers read it as a header named "*"; list the header names instead, or drop WithCredentials(true)`,
		},
		{
			name: "no scheme", opts: []Option{WithAllowedOrigins("https://a.example.com", "a.example.com")},
			want: ConfigError{Option: OptionAllowedOrigins, Value: "a.example.com", Reason: "has no scheme", Fix: `write it as "https://a.example.com"`},
			msg:  `interceptor: origin "a.example.com" has no scheme; write it as "https://a.example.com"`,
		},
		{
			name: "pattern", opts: []Option{WithAllowedOrigins("https://*.10.0.0.1")},
			want: ConfigError{Option: OptionAllowedOrigins, Value: "https://*.10.0.0.1", Reason: "puts a wildcard in front of an IP address", Fix: "list the origin exactly"},
			msg:  `interceptor: origin pattern "https://*.10.0.0.1" puts a wildcard in front of an IP address; list the origin exactly`,
		},
		{
			name: "empty origin", opts: []Option{WithAllowedOrigins("")},
			want: ConfigError{Option: OptionAllowedOrigins, Fix: `write an origin such as "https://app.example.com"`},
			msg:  `interceptor: empty origin; write an origin such as "https://app.example.com"`,
		},
		{
			name: "empty header", opts: []Option{WithAllowedHeaders("x-a", "")},
			want: ConfigError{Option: OptionAllowedHeaders, Fix: "remove the empty entry"},
			msg:  `interceptor: empty allowed header name; remove the empty entry`,
		},
		{
			name: "cors header", opts: []Option{WithExposedHeaders("Access-Control-Allow-Origin")},
			want: ConfigError{Option: OptionExposedHeaders, Value: "Access-Control-Allow-Origin", Reason: "is a CORS header the browser and corsgate manage", Fix: "remove it"},
			msg:  `interceptor: exposed header "Access-Control-Allow-Origin" is a CORS header the browser and corsgate manage; remove it`,
		},
		{
			name: "max-age negative", opts: []Option{WithMaxAge(-time.Second)},
			want: ConfigError{Option: OptionMaxAge, Value: "-1s", Reason: "is negative", Fix: "use 0 to omit the header or a duration up to 24h0m0s"},
			msg:  `interceptor: max-age "-1s" is negative; use 0 to omit the header or a duration up to 24h0m0s`,
		},
		{
			name: "max-age too long", opts: []Option{WithMaxAge(86401 * time.Second)},
			want: ConfigError{Option: OptionMaxAge, Value: "24h0m1s",
				Reason: "is too long: 86401 seconds is more than 86400 (24h0m0s), the most any browser honours (Chromium stops at 2h0m0s)",
				Fix:    "use at most 24h0m0s"},
			msg: `interceptor: max-age "24h0m1s" is too long: 86401 seconds is more than 86400 (24h0m0s), the most any browser honours (Chromium stops at 2h0m0s); use at most 24h0m0s`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.opts...)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("New: %v (%T), want a *ConfigError", err, err)
			}
			got := *ce
			got.subject = ""
			if got != tt.want {
				t.Errorf("fields\n got %+v\nwant %+v", got, tt.want)
			}
			if err.Error() != tt.msg {
				t.Errorf("Error()\n got %s\nwant %s", err, tt.msg)
			}
		})
	}
}

// TestConfigErrorDetail: Detail names the other option of a combination
// as the caller says, and nothing else changes.
func TestConfigErrorDetail(t *testing.T) {
	t.Parallel()
	_, err := New(WithAllowedOrigins("*"), WithCredentials(true))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	got := ce.Detail(func(option string) string { return "<" + option + ">" })
	want := `origin "*" together with credentials: browsers refuse a wildcard when credentials are allowed; list the origins instead, or drop <WithCredentials>`
	if got != want {
		t.Errorf("Detail\n got %s\nwant %s", got, want)
	}
	noFix := &ConfigError{Option: OptionAllowedOrigins, Value: "*", With: OptionCredentials, Reason: "r"}
	if got, want := noFix.Detail(func(o string) string { return o }), `origin "*" together with credentials: r; drop WithCredentials`; got != want {
		t.Errorf("Detail without a fix\n got %s\nwant %s", got, want)
	}
}

// TestCheckMaxAge: CheckMaxAge and New agree.
func TestCheckMaxAge(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{-time.Nanosecond, 0, time.Millisecond, time.Second, 1500 * time.Millisecond, DefaultMaxAge, MaxMaxAge, MaxMaxAge + time.Second} {
		_, newErr := New(WithMaxAge(d))
		checkErr := CheckMaxAge(d)
		if (newErr == nil) != (checkErr == nil) || newErr != nil && newErr.Error() != checkErr.Error() {
			t.Errorf("%v: New %v, CheckMaxAge %v", d, newErr, checkErr)
		}
	}
}
