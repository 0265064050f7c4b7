package cliflags

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/corsgate/corsgate/interceptor"
)

// OptionName ties an interceptor option to the flag that sets it and to its
// key in the config file (internal/config).
type OptionName struct {
	// Option is the option's Go name, as in [interceptor.ConfigError.Option].
	Option string
	// Flag is the flag's name, without dashes.
	Flag string
	// Key is the config file's key.
	Key string
}

// OptionNames is the one table of those names. A refusal of
// [interceptor.New] is reported through it, in flag terms by [CORS.Policy]
// and in key terms by internal/config.
var OptionNames = []OptionName{
	{Option: interceptor.OptionAllowedOrigins, Flag: FlagAllowOrigin, Key: "allow-origin"},
	{Option: interceptor.OptionAllowedHeaders, Flag: FlagAllowHeader, Key: "allow-header"},
	{Option: interceptor.OptionExposedHeaders, Flag: FlagExposeHeader, Key: "expose-header"},
	{Option: interceptor.OptionCredentials, Flag: FlagAllowCredentials, Key: "allow-credentials"},
	{Option: interceptor.OptionMaxAge, Flag: FlagMaxAge, Key: "max-age"},
}

func lookupOption(option string) (OptionName, bool) {
	for _, n := range OptionNames {
		if n.Option == option {
			return n, true
		}
	}
	return OptionName{}, false
}

// FlagName returns the flag that sets an interceptor option, as "--name",
// or the option's Go name when no flag sets it.
func FlagName(option string) string {
	if n, ok := lookupOption(option); ok {
		return "--" + n.Flag
	}
	return option
}

// KeyName returns the config key that sets an interceptor option, or the
// option's Go name when no key sets it.
func KeyName(option string) string {
	if n, ok := lookupOption(option); ok {
		return n.Key
	}
	return option
}

// FlagError returns err as a [UsageError]; a refusal of [interceptor.New]
// is said in flag terms: `--allow-origin "x": origin "x" has no scheme;
// write it as "https://x"`.
func FlagError(err error) error {
	var ce *interceptor.ConfigError
	if !errors.As(err, &ce) {
		return &UsageError{Err: err}
	}
	msg := FlagName(ce.Option) + " " + strconv.Quote(ce.Value) + ": " + ce.Detail(FlagName)
	return &UsageError{Err: &renamedError{msg: msg, err: ce}}
}

// renamedError is a ConfigError said in other names; errors.As still finds
// the ConfigError.
type renamedError struct {
	msg string
	err *interceptor.ConfigError
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// KeyTerms says a refusal of [interceptor.New] in config-key terms: the key
// at fault and the error about it, which unwraps to ce. A value refused on
// its own is about its key; a value refused together with an option set to
// true (the "*" origin with credentials) is about that option's key, since
// that is what the file turned on:
//
//	allow-origin: origin "null" is sent by sandboxed iframes ...; remove it
//	allow-credentials: true together with "*" in allow-origin: browsers refuse ...; list the origins instead, or drop allow-credentials
func KeyTerms(ce *interceptor.ConfigError) (key string, err error) {
	if ce.With == "" {
		return KeyName(ce.Option), &renamedError{msg: ce.Detail(KeyName), err: ce}
	}
	fix := "drop " + KeyName(ce.With)
	if ce.Fix != "" {
		fix = ce.Fix + ", or " + fix
	}
	msg := fmt.Sprintf("true together with %s in %s: %s; %s", strconv.Quote(ce.Value), KeyName(ce.Option), ce.Reason, fix)
	return KeyName(ce.With), &renamedError{msg: msg, err: ce}
}

// CheckMaxAge applies the rules of --max-age and of the max-age key: whole
// seconds (Access-Control-Max-Age counts seconds, and a config file gives
// seconds), then those of [interceptor.CheckMaxAge], whose
// [*interceptor.ConfigError] it wraps. Its message starts with "max-age".
func CheckMaxAge(d time.Duration) error {
	if d%time.Second != 0 {
		return fmt.Errorf("max-age %s is not whole seconds: Access-Control-Max-Age counts seconds", strconv.Quote(d.String()))
	}
	var ce *interceptor.ConfigError
	if err := interceptor.CheckMaxAge(d); errors.As(err, &ce) {
		return &renamedError{msg: ce.Detail(FlagName), err: ce}
	}
	return nil
}
