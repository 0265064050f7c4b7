package config_test

import (
	"errors"
	"testing"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/config"
)

// TestPolicyRefusalIsTyped: a CORS value the interceptor refuses is a
// *KeyError for its key that still unwraps to the interceptor's
// *ConfigError, with the option and the value.
func TestPolicyRefusalIsTyped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input, key, option, value string
	}{
		{name: "origin alone", input: "allow-origin: [null]\n", key: "allow-origin", option: interceptor.OptionAllowedOrigins},
		{name: "origin pattern", input: "allow-origin: ['https://*.co.uk']\n", key: "allow-origin", option: interceptor.OptionAllowedOrigins, value: "https://*.co.uk"},
		{name: "star with credentials", input: "allow-origin: ['*']\nallow-credentials: true\n", key: "allow-credentials", option: interceptor.OptionAllowedOrigins, value: "*"},
		{name: "max-age", input: "max-age: 90000\n", key: "max-age", option: interceptor.OptionMaxAge, value: "25h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.input))
			var ke *config.KeyError
			var ce *interceptor.ConfigError
			switch {
			case !errors.As(err, &ke) || ke.Key != tt.key:
				t.Errorf("error %v: want a *KeyError for %q", err, tt.key)
			case !errors.As(err, &ce):
				t.Errorf("error %v does not unwrap to an *interceptor.ConfigError", err)
			case ce.Option != tt.option || ce.Value != tt.value:
				t.Errorf("ConfigError option %q value %q, want %q %q", ce.Option, ce.Value, tt.option, tt.value)
			}
		})
	}
}
