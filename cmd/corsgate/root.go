package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/version"
)

// Exit statuses of corsgate.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad flags, arguments or configuration
)

// commands holds the subcommand constructors added by register.
var commands []func() *cobra.Command

// register adds a subcommand to corsgate. Each command's file calls it from
// its init function:
//
//	func init() { register(newServeCmd) }
//
// f is called once for every root command built (tests build many), so it
// must return a fresh command bound to fresh flag variables. A command
// prints its results to cmd.OutOrStdout(), logs to cmd.ErrOrStderr(), stops
// when cmd.Context() is done (SIGINT, SIGTERM), and returns an error instead
// of printing it. Errors returned before its RunE starts (flag parsing,
// argument validation) and [cliflags.UsageError] exit with status 2; other
// errors exit with status 1.
func register(f func() *cobra.Command) {
	commands = append(commands, f)
}

// newRoot builds the corsgate command with every registered subcommand.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "corsgate",
		Short: "CORS-aware gRPC-Web and Connect gateway",
		Long: "corsgate serves gRPC-Web and Connect to browsers, with CORS rules derived from the\n" +
			"services' protobuf descriptors: per procedure, the allowed methods, request headers\n" +
			"and exposed response headers and trailers.",
		Version:       version.Version,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cliflags.UsageError{Err: err}
	})
	root.CompletionOptions.HiddenDefaultCmd = true
	for _, f := range commands {
		root.AddCommand(f())
	}
	return root
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return cliflags.Usagef("%s", msg)
}

// run executes corsgate with args (without the program name) and returns its
// exit status. A failure is printed as one line to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, newRoot(), args, stdout, stderr)
}

// execute runs root with args and returns the exit status.
func execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	started := false
	markStarted(root, &started)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	name := root.Name()
	if cmd != nil {
		name = cmd.CommandPath()
	}
	msg := oneLine(err.Error())
	code := exitFailure
	if !started || cliflags.IsUsage(err) {
		code = exitUsage
		msg += fmt.Sprintf(" (run '%s --help' for usage)", name)
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, msg)
	return code
}

// markStarted wraps the run functions of c and its subcommands so that
// *started tells whether a command's RunE began: errors before it are about
// the command line.
func markStarted(c *cobra.Command, started *bool) {
	if runE := c.RunE; runE != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*started = true
			return runE(cmd, args)
		}
	} else if run := c.Run; run != nil {
		c.Run = func(cmd *cobra.Command, args []string) {
			*started = true
			run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markStarted(sub, started)
	}
}

// oneLine joins the lines of a multi-line message with "; ".
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
