package config

import "fmt"

// CheckAccessLog checks a value of access-log: "off", "json" or "text".
func CheckAccessLog(s string) error {
	switch s {
	case "off", "json", "text":
		return nil
	}
	return fmt.Errorf("%q: give off, json or text", s)
}
