package config

import "fmt"

// CheckAccessLog checks an access-log value (also the --access-log flag):
// "off", "json" or "text".
func CheckAccessLog(s string) error {
	switch s {
	case "off", "json", "text":
		return nil
	}
	return fmt.Errorf("%q: use off, json or text", s)
}
