// Package tools is the module that pins every Go tool the repository's
// scripts run: staticcheck, the Connect conformance suite's connectconformance
// and referenceserver, and the protoc plugins buf runs. Each is a tool line in
// this module's go.mod, so its version is in go.sum and a script runs it with
// `go tool NAME` from anywhere in the workspace, whatever is on the PATH.
//
// Its tests check the rules of the repository that no compiler checks: every
// Go tool a script runs is pinned that way (pins_test.go), and the root
// module, the one a team importing corsgate inherits, requires only what its
// packages and their unit tests import (rootmod_test.go).
//
// It is a module of its own so that the tools' requirements never enter the
// root module's graph.
package tools
