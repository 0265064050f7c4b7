// Package version holds the version of the corsgate binary.
package version

import "runtime/debug"

// Version is corsgate's version. Release builds set it with
//
//	go build -ldflags "-X github.com/corsgate/corsgate/internal/version.Version=v1.2.3" ./cmd/corsgate
//
// When it is not set, it is the main module's version recorded by the Go
// toolchain (set by go install module@version), else "devel".
var Version string

func init() {
	if Version == "" {
		Version = fromBuildInfo(debug.ReadBuildInfo())
	}
}

// fromBuildInfo returns the main module's version from build information, or
// "devel" when there is none worth showing.
func fromBuildInfo(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "devel"
	}
	switch v := info.Main.Version; v {
	case "", "(devel)":
		return "devel"
	default:
		return v
	}
}
