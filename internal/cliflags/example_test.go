package cliflags_test

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/corsgate/corsgate/internal/cliflags"
)

func ExampleCORS() {
	var c cliflags.CORS
	fs := pflag.NewFlagSet("corsgate demo", pflag.ContinueOnError)
	c.Register(fs)
	err := fs.Parse([]string{
		"--allow-origin", "https://app.example.com",
		"--allow-origin", "https://*.preview.example.com",
		"--allow-credentials",
		"--max-age", "600", // whole seconds, or a duration such as 10m
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("origins:", c.AllowOrigins)
	fmt.Println("credentials:", c.AllowCredentials)
	fmt.Println("max-age:", c.MaxAge)
	fmt.Println("log level:", c.LogLevel)

	// A config file fills in what the command line left out.
	err = cliflags.ApplyUnchanged(fs, map[string]any{
		"allow-origin": []any{"https://ignored.example.com"}, // the command line wins
		"strict":       true,
	})
	fmt.Println("strict:", c.Strict, "origins:", len(c.AllowOrigins), "error:", err)
	// Output:
	// origins: [https://app.example.com https://*.preview.example.com]
	// credentials: true
	// max-age: 10m0s
	// log level: info
	// strict: true origins: 2 error: <nil>
}
