// Command corsgate serves gRPC-Web and Connect to browsers with CORS derived
// from the services' protobuf descriptors.
//
// Usage:
//
//	corsgate demo      serve the example service and web page (drop-in mode)
//	corsgate version   print the version
//
// Run corsgate help for every command. corsgate exits with status 0 on
// success, 1 when a command fails, and 2 for a bad command line or
// configuration; the error is printed as one line to stderr.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
