package config_test

import (
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/config"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// every error must be a single line.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"",
		fullConfig,
		"listen: :8080\nbackend: http://127.0.0.1:9090\n",
		"max-age: 2h\nshutdown-grace: 1.5\n",
		"allow-origin: [\"*\"]\nallow-credentials: true\n",
		"services:\n- name: a.B\n  procedures:\n  - name: C\n    methods: [GET]\n",
		"services: [{name: x, procedures: [{name: y, methods: [POST], metods: 1}]}]",
		`{"listen": ":1", "max-message-size": 1e300}`,
		"a: &a [*a, *a]\n",
		"- - - -\n",
		"? [a, b]\n: c\n",
		"listen: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := config.Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
			return
		}
		_ = file.Values()
	})
}
