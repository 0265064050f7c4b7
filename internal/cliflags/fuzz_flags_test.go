package cliflags

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// FuzzParseMaxAge checks --max-age parsing: no panic, an accepted value is
// whole non-negative seconds, and the value printed for --help parses back
// to the same duration.
func FuzzParseMaxAge(f *testing.F) {
	for _, s := range []string{"2h", "7200", "0", "0s", "90m", "1.5s", "-1", "-1s", "soon", "", " 60 ", "1h30m", "9223372036854775807", "2562047h", "1e3", "+5", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseMaxAge(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseMaxAge(%q): error has several lines: %q", s, err)
			}
			if !strings.Contains(err.Error(), "max-age") {
				t.Fatalf("ParseMaxAge(%q): error %q does not name max-age", s, err)
			}
			return
		}
		if d < 0 || d%time.Second != 0 {
			t.Fatalf("ParseMaxAge(%q) = %v, not whole non-negative seconds", s, d)
		}
		printed := formatDuration(d)
		back, err := ParseMaxAge(printed)
		if err != nil || back != d {
			t.Fatalf("ParseMaxAge(%q) = %v, printed %q, which parses to %v, %v", s, d, printed, back, err)
		}
	})
}

// FuzzApplyUnchanged applies an arbitrary config value (any JSON) to each
// shared flag: no panic, a refusal is a one-line UsageError naming the key,
// and a flag given on the command line is never changed.
func FuzzApplyUnchanged(f *testing.F) {
	keys := []string{FlagAllowOrigin, FlagAllowHeader, FlagExposeHeader, FlagAllowCredentials, FlagMaxAge, FlagPrivateNetwork, FlagStrict, FlagLogLevel, "nope"}
	for i := range keys {
		for _, v := range []string{`"x"`, `["a","b"]`, `true`, `7200`, `1.5`, `null`, `{}`, `[[1]]`, `"2h"`, `[]`, `-1`, `1e300`} {
			f.Add(uint8(i), v, false)
			f.Add(uint8(i), v, true)
		}
	}
	f.Fuzz(func(t *testing.T, keyIdx uint8, value string, onCommandLine bool) {
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return
		}
		key := keys[int(keyIdx)%len(keys)]
		var c CORS
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		c.Register(fs)
		var args []string
		if onCommandLine && key != "nope" {
			args = []string{"--" + key + "=" + map[string]string{
				FlagAllowOrigin: "https://cli.example.com", FlagAllowHeader: "x-cli", FlagExposeHeader: "x-cli",
				FlagAllowCredentials: "true", FlagMaxAge: "60", FlagPrivateNetwork: "true", FlagStrict: "true", FlagLogLevel: "warn",
			}[key]}
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		before := ""
		if fl := fs.Lookup(key); fl != nil {
			before = fl.Value.String()
		}
		err := ApplyUnchanged(fs, map[string]any{key: v})
		if err != nil {
			if !IsUsage(err) {
				t.Fatalf("error %v is not a UsageError", err)
			}
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `"`+key+`"`) {
				t.Fatalf("error %q: want one line naming %q", err, key)
			}
		}
		if fl := fs.Lookup(key); fl != nil && onCommandLine && fl.Value.String() != before {
			t.Fatalf("config value %s changed --%s given on the command line: %q -> %q", value, key, before, fl.Value.String())
		}
	})
}
