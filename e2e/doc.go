// Package e2e holds corsgate's end-to-end tests. CORS exists only in
// browsers, so a real Chromium, driven with chromedp, loads the demo page
// (example/web) from one origin and calls greet.v1.GreetService on another:
// through the drop-in interceptor wrapping connect-go, and through the
// gateway in front of a grpc-go server. The package has no code besides its
// tests.
//
// The tests need Chromium (CORSGATE_CHROMIUM, else chromium on PATH). Without
// it they skip, except when CI=true, where a missing browser is a failure.
// With CORSGATE_SCREENSHOT=path the demo test also writes its screenshot
// there (the README's docs/screenshot.png).
package e2e
