package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/testutil"
)

// testVersion is set with -ldflags in the binary TestBinary builds.
const testVersion = "v0.0.0-ldflags-test"

// buildBinary builds corsgate into a temporary directory with the version set
// through -ldflags, as a release build does.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "corsgate")
	ldflags := "-X github.com/corsgate/corsgate/internal/version.Version=" + testVersion
	build := exec.CommandContext(t.Context(), "go", "build", "-ldflags", ldflags, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the built corsgate: the version set by -ldflags, exit
// status 2 for a refused configuration, and a clean stop of corsgate demo on
// SIGINT and SIGTERM.
func TestBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		out, err := exec.CommandContext(t.Context(), bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(out); got != testVersion+"\n" {
			t.Errorf("corsgate version printed %q, want %q", got, testVersion+"\n")
		}
	})

	t.Run("refused configuration", func(t *testing.T) {
		t.Parallel()
		cmd := exec.CommandContext(t.Context(), bin, "demo", "--allow-origin", "*", "--allow-credentials",
			"--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
			t.Fatalf("exit: %v, want status %d; stderr %q", err, exitUsage, stderr.String())
		}
		if line := stderr.String(); strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "corsgate demo: ") {
			t.Errorf("stderr = %q, want one line starting with %q", line, "corsgate demo: ")
		}
		if stdout.Len() != 0 {
			t.Errorf("stdout = %q, want nothing: no URL is printed when the demo can't start", stdout.String())
		}
	})

	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run("demo stops on "+sig.String(), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, "demo", "--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0")
			pr, pw := io.Pipe()
			stderr := &testutil.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = pw, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				done <- cmd.Wait()
				pw.Close()
			}()
			t.Cleanup(func() {
				_ = cmd.Process.Kill() // no-op when it has exited
			})
			urls := make(chan printedURLs, 1)
			go readURLs(pr, urls)
			var u printedURLs
			select {
			case u = <-urls:
			case err := <-done:
				t.Fatalf("corsgate demo exited before printing its URLs: %v\n%s", err, stderr)
			case <-time.After(startWait):
				t.Fatalf("corsgate demo printed no URLs within %v\n%s", startWait, stderr)
			}

			req, err := http.NewRequest(http.MethodOptions, u.api+greetv1connect.GreetServiceGreetProcedure, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", u.web)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != u.web {
				t.Errorf("preflight from the page's origin: %d, ACAO %q; want 204, %q",
					res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), u.web)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("corsgate demo after %v: %v, want exit status 0\n%s", sig, err, stderr)
				}
			case <-time.After(startWait):
				t.Fatalf("corsgate demo did not stop within %v of %v\n%s", startWait, sig, stderr)
			}
			if !strings.Contains(stderr.String(), "shutting down") {
				t.Errorf("stderr %q does not log the shutdown", stderr)
			}
			if _, err := http.Get(u.api + "/debug/calls"); err == nil {
				t.Error("the API still answers after the demo stopped")
			}
		})
	}
}
