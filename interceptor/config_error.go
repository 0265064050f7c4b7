package interceptor

import (
	"strconv"
	"strings"
	"time"
)

// The Go names of the options a [ConfigError] names in its Option and With
// fields. Programs that set options from flags or config keys map these to
// their own names.
const (
	OptionAllowedOrigins = "WithAllowedOrigins"
	OptionAllowedHeaders = "WithAllowedHeaders"
	OptionExposedHeaders = "WithExposedHeaders"
	OptionCredentials    = "WithCredentials"
	OptionMaxAge         = "WithMaxAge"
	OptionMaxMessageSize = "WithMaxMessageSize"
)

// optionNouns is how messages speak of an option's values.
var optionNouns = map[string]string{
	OptionAllowedOrigins: "origin",
	OptionAllowedHeaders: "allowed header",
	OptionExposedHeaders: "exposed header",
	OptionCredentials:    "credentials",
	OptionMaxAge:         "max-age",
	OptionMaxMessageSize: "max message size",
}

// ConfigError is the error [New] (and [CheckMaxAge]) returns for an option
// value it refuses; get it with errors.As. Its fields let a program that
// sets options from flags or a config file say which of its own settings is
// at fault, in its own names, without parsing the message: see
// [ConfigError.Detail].
type ConfigError struct {
	// Option is the option at fault, by its Go name: one of the Option...
	// constants, such as [OptionAllowedOrigins].
	Option string
	// Value is the value refused, as given ("" for an empty entry); a
	// duration is in its String form.
	Value string
	// With is set when Value is refused only in combination with another
	// option set to true: the name of that option ([OptionCredentials], the
	// only one so far). Dropping it is always a fix too.
	With string
	// Reason says what is wrong with the value (empty for an empty entry,
	// where the message says so), Fix what to write instead (may be empty).
	// Neither names an option.
	Reason, Fix string

	// subject, when set, replaces "<noun> <quoted value>" at the head of
	// the message ("empty origin", "origin pattern ...").
	subject string
}

// Error is the message with the options' Go names, prefixed "interceptor: ".
func (e *ConfigError) Error() string {
	return "interceptor: " + e.Detail(func(option string) string {
		if option == OptionCredentials {
			return option + "(true)"
		}
		return option
	})
}

// Detail is the message without the package prefix; name returns how the
// reader knows an option (a flag such as "--allow-credentials", a config
// key), and is called only for With. The message has the form
// `origin "*" together with credentials: <Reason>; <Fix>, or drop <With>`,
// or `origin "x" <Reason>; <Fix>` for a value refused on its own.
func (e *ConfigError) Detail(name func(option string) string) string {
	var b strings.Builder
	if e.subject != "" {
		b.WriteString(e.subject)
	} else {
		b.WriteString(optionNouns[e.Option])
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.Value))
	}
	if e.With != "" {
		b.WriteString(" together with ")
		b.WriteString(optionNouns[e.With])
		b.WriteByte(':')
	}
	if e.Reason != "" {
		b.WriteByte(' ')
		b.WriteString(e.Reason)
	}
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	if e.With != "" {
		if e.Fix != "" {
			b.WriteString(", or drop ")
		} else {
			b.WriteString("; drop ")
		}
		b.WriteString(name(e.With))
	}
	return b.String()
}

// originError is the refusal of origin o.
func originError(o, reason, fix string) error {
	return &ConfigError{Option: OptionAllowedOrigins, Value: o, Reason: reason, Fix: fix}
}

// patternError is the refusal of origin pattern o.
func patternError(o, reason, fix string) error {
	return &ConfigError{Option: OptionAllowedOrigins, Value: o, Reason: reason, Fix: fix, subject: "origin pattern " + strconv.Quote(o)}
}

// CheckMaxAge returns the [ConfigError] [New] returns for [WithMaxAge](d),
// or nil when New accepts d: negative values, values between 0 and 1 s and
// values above [MaxMaxAge] are refused.
func CheckMaxAge(d time.Duration) error {
	e := &ConfigError{Option: OptionMaxAge, Value: d.String()}
	switch {
	case d < 0:
		e.Reason, e.Fix = "is negative", "use 0 to omit the header or a duration up to "+MaxMaxAge.String()
	case d > MaxMaxAge:
		e.Reason = "is too long: " + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " seconds is more than " +
			strconv.FormatInt(int64(MaxMaxAge/time.Second), 10) + " (" + MaxMaxAge.String() +
			"), the most any browser honours (Chromium stops at " + DefaultMaxAge.String() + ")"
		e.Fix = "use at most " + MaxMaxAge.String()
	case d > 0 && d < time.Second:
		e.Reason, e.Fix = "is below one second, the header's unit", "use 0 to omit it or at least 1s"
	default:
		return nil
	}
	return e
}
