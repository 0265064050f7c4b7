package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/version"
)

// runCLI runs corsgate in-process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			if want := version.Version + "\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	free := []string{"--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // substring of the one line; "" means stderr must be empty
		wantStdout string // substring
	}{
		{name: "no arguments prints help", args: nil, wantCode: exitOK, wantStdout: "Available Commands"},
		{name: "help flag", args: []string{"--help"}, wantCode: exitOK, wantStdout: "demo"},
		{name: "demo help", args: []string{"demo", "--help"}, wantCode: exitOK, wantStdout: "--allow-origin"},
		{name: "unknown command", args: []string{"nope"}, wantCode: exitUsage, wantStderr: `corsgate: unknown command "nope"`},
		{name: "suggestion", args: []string{"dmeo"}, wantCode: exitUsage, wantStderr: `did you mean "demo"?`},
		{name: "unknown flag", args: []string{"demo", "--nope"}, wantCode: exitUsage, wantStderr: "corsgate demo: unknown flag: --nope"},
		{name: "extra argument", args: []string{"demo", "extra"}, wantCode: exitUsage, wantStderr: `unknown command "extra"`},
		{name: "version takes no argument", args: []string{"version", "x"}, wantCode: exitUsage, wantStderr: "corsgate version:"},
		{name: "bad max-age", args: []string{"demo", "--max-age", "soon"}, wantCode: exitUsage, wantStderr: `"soon" is neither`},
		{name: "bad log level", args: []string{"demo", "--log-level", "loud"}, wantCode: exitUsage, wantStderr: `unknown log level "loud"`},
		{name: "listen without port", args: []string{"demo", "--listen", "localhost"}, wantCode: exitUsage, wantStderr: `--listen "localhost"`},
		{
			name:       "any origin with credentials",
			args:       append([]string{"demo", "--allow-origin", "*", "--allow-credentials"}, free...),
			wantCode:   exitUsage,
			wantStderr: "corsgate demo:",
		},
		{
			name:       "null origin",
			args:       append([]string{"demo", "--allow-origin", "null"}, free...),
			wantCode:   exitUsage,
			wantStderr: "null",
		},
		{
			name:       "refused configuration before the ports are taken",
			args:       []string{"demo", "--allow-origin", "null", "--listen", busy.Addr().String()},
			wantCode:   exitUsage,
			wantStderr: `origin "null"`,
		},
		{
			name:       "address in use",
			args:       []string{"demo", "--listen", busy.Addr().String(), "--web-listen", "127.0.0.1:0"},
			wantCode:   exitFailure,
			wantStderr: "corsgate demo: --listen: listen tcp " + busy.Addr().String(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			if tt.wantStderr == "" && stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
			if tt.wantStderr != "" {
				if !strings.Contains(stderr, tt.wantStderr) {
					t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
				}
				if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
					t.Errorf("stderr is not one line: %q", stderr)
				}
				if usage := strings.Contains(stderr, "--help' for usage"); usage != (tt.wantCode == exitUsage) {
					t.Errorf("stderr %q: usage hint present = %v, want %v", stderr, usage, tt.wantCode == exitUsage)
				}
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout, tt.wantStdout)
			}
		})
	}
}

// TestExecuteClassifiesErrors checks the exit status of errors from commands
// other helpers register: before RunE is a usage error, inside RunE a failure
// unless it is a UsageError.
func TestExecuteClassifiesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLine string
	}{
		{name: "runtime failure", args: []string{"fail"}, wantCode: exitFailure, wantLine: "corsgate fail: backend down\n"},
		{name: "usage error from RunE", args: []string{"misuse"}, wantCode: exitUsage, wantLine: "corsgate misuse: need --x (run 'corsgate misuse --help' for usage)\n"},
		{name: "argument validation", args: []string{"two"}, wantCode: exitUsage, wantLine: "corsgate two: accepts 2 arg(s), received 0 (run 'corsgate two --help' for usage)\n"},
		{name: "required flag", args: []string{"need"}, wantCode: exitUsage, wantLine: `corsgate need: required flag(s) "x" not set (run 'corsgate need --help' for usage)` + "\n"},
		{name: "multi-line error", args: []string{"lines"}, wantCode: exitFailure, wantLine: "corsgate lines: first; second\n"},
		{name: "success", args: []string{"two", "a", "b"}, wantCode: exitOK, wantLine: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := newRoot()
			root.AddCommand(
				&cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error { return errors.New("backend down") }},
				&cobra.Command{Use: "misuse", RunE: func(*cobra.Command, []string) error { return cliflags.Usagef("need --x") }},
				&cobra.Command{Use: "two", Args: cobra.ExactArgs(2), RunE: func(*cobra.Command, []string) error { return nil }},
				&cobra.Command{Use: "lines", RunE: func(*cobra.Command, []string) error { return errors.New("first\nsecond\n") }},
			)
			need := &cobra.Command{Use: "need", RunE: func(*cobra.Command, []string) error { return nil }}
			need.Flags().String("x", "", "")
			if err := need.MarkFlagRequired("x"); err != nil {
				t.Fatal(err)
			}
			root.AddCommand(need)
			var out, errOut bytes.Buffer
			code := execute(context.Background(), root, tt.args, &out, &errOut)
			if code != tt.wantCode || errOut.String() != tt.wantLine {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errOut.String(), tt.wantCode, tt.wantLine)
			}
		})
	}
}

func TestRegisteredCommands(t *testing.T) {
	t.Parallel()
	a, b := newRoot(), newRoot()
	for _, name := range []string{"demo", "version"} {
		ca, _, err := a.Find([]string{name})
		if err != nil || ca.Name() != name {
			t.Fatalf("Find(%q) = %v, %v", name, ca, err)
		}
		cb, _, _ := b.Find([]string{name})
		if ca == cb {
			t.Errorf("two roots share the %q command: constructors must build fresh ones", name)
		}
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{in: "plain", want: "plain"},
		{in: "a\nb", want: "a; b"},
		{in: "a\r\n  b\n\nc\n", want: "a; b; c"},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
