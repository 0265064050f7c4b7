package cliflags

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/pflag"
)

// ApplyUnchanged sets flags of fs from values, keyed by flag name, except the
// flags given on the command line (fs.Changed), which win. It is how
// `corsgate serve --config` applies a config file, whose keys are the flag
// names: turn the parsed file into a map (for example through its JSON form,
// leaving out absent keys) and pass the keys that name flags.
//
// A value may be a string, a bool, a number (JSON's float64 included; whole
// numbers only), a []string or a []any of those; nil is skipped. Lists
// replace the flag's default; an empty list leaves it. Values are set as if
// parsed from the command line, with the same validation, but fs.Changed
// still reports only command-line flags afterwards.
//
// A key that names no flag, or a value a flag refuses, is a [UsageError]
// naming the key. The keys are applied in sorted order.
func ApplyUnchanged(fs *pflag.FlagSet, values map[string]any) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		f := fs.Lookup(key)
		if f == nil {
			return Usagef("config key %q is not a flag", key)
		}
		if f.Changed || values[key] == nil {
			continue
		}
		if err := applyValue(f, values[key]); err != nil {
			return &UsageError{Err: fmt.Errorf("config key %q: %w", key, err)}
		}
	}
	return nil
}

func applyValue(f *pflag.Flag, v any) error {
	switch v := v.(type) {
	case []string:
		return applyList(f, v)
	case []any:
		list := make([]string, 0, len(v))
		for _, e := range v {
			s, err := scalarString(e)
			if err != nil {
				return err
			}
			list = append(list, s)
		}
		return applyList(f, list)
	default:
		s, err := scalarString(v)
		if err != nil {
			return err
		}
		if _, ok := f.Value.(pflag.SliceValue); ok {
			return applyList(f, []string{s})
		}
		return f.Value.Set(s)
	}
}

func applyList(f *pflag.Flag, list []string) error {
	sv, ok := f.Value.(pflag.SliceValue)
	if !ok {
		return fmt.Errorf("a list is given but --%s takes one value", f.Name)
	}
	if len(list) == 0 {
		return nil
	}
	return sv.Replace(list)
}

func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		if v != float64(int64(v)) {
			return "", fmt.Errorf("%v is not a whole number", v)
		}
		return strconv.FormatInt(int64(v), 10), nil
	default:
		return "", fmt.Errorf("unsupported value %v of type %T", v, v)
	}
}
